//! File watching. TODO: the language-server issue fills this in.
