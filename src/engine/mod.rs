//! The container engine seam. TODO: the Docker issue fills this in.
