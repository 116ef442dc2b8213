pub mod bench_captures;
pub mod db_sessions;
pub mod http_sessions;
pub mod mysql_synth;
pub mod pgsql_synth;
pub mod redis_synth;
pub mod synth;
pub mod tcp_conn;
