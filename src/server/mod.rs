//! The language server. TODO: the language-server issue fills this in.
