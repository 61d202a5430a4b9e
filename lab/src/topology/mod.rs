//! topology: under construction.
