pub mod mysql_synth;
pub mod pgsql_synth;
pub mod redis_synth;
pub mod synth;
