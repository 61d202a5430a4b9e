//! ipvs: under construction.
