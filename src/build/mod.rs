//! The build pipeline. TODO: the Docker issue fills this in.
