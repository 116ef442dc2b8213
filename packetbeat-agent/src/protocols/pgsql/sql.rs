//! SQL text helpers: splitting a simple-query string into statements, and the `method` of one.
//!
//! Packetbeat splits a Query on every `;` and upper-cases the text before the first space. That
//! miscounts statements whose literals contain `;` (`INSERT … VALUES ('a;b')`), and one extra
//! statement shifts the pairing of every later response on the connection. The splitter here knows
//! what PostgreSQL's lexer treats as opaque: `'…'` (with `''`), `E'…'` (with `\'`), `"…"`,
//! `$tag$…$tag$`, `-- …` and nested `/* … */`. Pieces holding only whitespace and comments are
//! dropped, as the server does; each piece is trimmed, as Packetbeat does.

/// Splits `sql` into its statements (trimmed, without the `;`), skipping empty ones.
#[must_use]
pub fn split_statements(sql: &str) -> Vec<&str> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut has_code = false;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b';' => {
                push_piece(&mut out, sql, start, i, has_code);
                has_code = false;
                i += 1;
                start = i;
                continue;
            }
            b'-' if next == Some(b'-') => {
                i = b.get(i..).and_then(|r| r.iter().position(|&x| x == b'\n')).map_or(b.len(), |p| i + p + 1);
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = skip_block_comment(b, i);
                continue;
            }
            b'\'' => {
                let escapes = i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident(b[i - 2]));
                i = skip_quoted(b, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(b, i, b'"', false),
            b'$' if i == 0 || !is_ident(b[i - 1]) => match dollar_tag(b, i) {
                Some(tag_len) => i = skip_dollar(b, i, tag_len),
                None => i += 1,
            },
            _ => i += 1,
        }
        if !c.is_ascii_whitespace() {
            has_code = true;
        }
    }
    push_piece(&mut out, sql, start, b.len(), has_code);
    out
}

fn push_piece<'a>(out: &mut Vec<&'a str>, sql: &'a str, start: usize, end: usize, has_code: bool) {
    if has_code {
        if let Some(piece) = sql.get(start..end).map(str::trim).filter(|p| !p.is_empty()) {
            out.push(piece);
        }
    }
}

const fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Index just past the closing quote (or the end of the text).
fn skip_quoted(b: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        if backslash_escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn skip_block_comment(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied()) {
            (b'/', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// Length of a `$tag$` opener at `at` (including both `$`), if it is one.
fn dollar_tag(b: &[u8], at: usize) -> Option<usize> {
    let rest = b.get(at + 1..)?;
    let end = rest.iter().position(|&c| !is_ident(c))?;
    if rest.get(end) != Some(&b'$') || rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some(end + 2)
}

fn skip_dollar(b: &[u8], open: usize, tag_len: usize) -> usize {
    let Some(tag) = b.get(open..open + tag_len) else {
        return b.len();
    };
    let body = open + tag_len;
    b.get(body..).and_then(|r| r.windows(tag_len).position(|w| w == tag)).map_or(b.len(), |p| body + p + tag_len)
}

/// The statement's verb: its first word (after leading comments), upper-cased.
///
/// Packetbeat takes the text before the first space, so `SELECT\n1` gives `SELECT\N1`; here any
/// whitespace or `(` ends the word.
#[must_use]
pub fn method_of(statement: &str) -> String {
    let mut s = statement.trim_start();
    loop {
        if let Some(r) = s.strip_prefix("--") {
            s = r.split_once('\n').map_or("", |(_, t)| t).trim_start();
        } else if s.starts_with("/*") {
            let end = skip_block_comment(s.as_bytes(), 0);
            s = s.get(end..).unwrap_or_default().trim_start();
        } else {
            break;
        }
    }
    let end = s.find(|c: char| c.is_whitespace() || c == '(' || c == ';').unwrap_or(s.len());
    s.get(..end).unwrap_or_default().to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_server() {
        assert_eq!(split_statements("select 1; select 2;"), vec!["select 1", "select 2"]);
        assert_eq!(split_statements("  select * from test  "), vec!["select * from test"]);
        assert_eq!(split_statements(";; ;"), Vec::<&str>::new());
        assert_eq!(split_statements(""), Vec::<&str>::new());
        assert_eq!(
            split_statements("insert into t values ('a;b', 'it''s;')"),
            vec!["insert into t values ('a;b', 'it''s;')"]
        );
        assert_eq!(split_statements(r"select E'\';' ; select 2"), vec![r"select E'\';'", "select 2"]);
        assert_eq!(split_statements(r#"select 1 as "x;y"; select 2"#).len(), 2);
        assert_eq!(
            split_statements("create function f() returns int as $b$ select 1; $b$ language sql; select 3"),
            vec!["create function f() returns int as $b$ select 1; $b$ language sql", "select 3"]
        );
        assert_eq!(split_statements("select $$a;b$$; select 2").len(), 2);
        assert_eq!(split_statements("select 1; -- done; really\n"), vec!["select 1"]);
        assert_eq!(split_statements("select 1 /* a; /* b; */ c; */; select 2").len(), 2);
        assert_eq!(split_statements("/* only a comment */"), Vec::<&str>::new());
        assert_eq!(split_statements("select $1; select 'unterminated;"), vec!["select $1", "select 'unterminated;"]);
    }

    #[test]
    fn methods() {
        assert_eq!(method_of("select * from t"), "SELECT");
        assert_eq!(method_of("INSERT INTO t"), "INSERT");
        assert_eq!(method_of("begin"), "BEGIN");
        assert_eq!(method_of("select\n1"), "SELECT");
        assert_eq!(method_of("/* hint */ -- x\n update t set a=1"), "UPDATE");
        assert_eq!(method_of("values(1)"), "VALUES");
        assert_eq!(method_of(""), "");
    }
}
