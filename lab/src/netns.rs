//! netns: under construction.
