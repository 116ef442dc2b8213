pub mod synth;
pub mod pgsql_synth;
