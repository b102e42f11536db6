//! Reading a running Placement's database: the connection URL, one consistent read-only
//! snapshot, and the raw rows of every table an import needs ([`Tables`]).
//!
//! # The URL
//! The `[placement_database] connection` string, as `placement.conf` has it (SQLAlchemy's
//! form): `mysql+pymysql://USER:PASS@HOST[:PORT]/DB[?charset=utf8&unix_socket=PATH]` (any
//! `mysql` or `mariadb` dialect and driver), or `sqlite:///relative.db` /
//! `sqlite:////absolute/path.db`. User and password are percent-decoded. The driver speaks
//! MySQL without TLS: a URL asking for TLS (`ssl_*` parameters) is refused rather than
//! silently downgraded.
//!
//! # One snapshot
//! Everything is read inside one transaction: MySQL/MariaDB `REPEATABLE READ` started `WITH
//! CONSISTENT SNAPSHOT, READ ONLY` (InnoDB's MVCC: the reads see one instant and block no
//! writer); SQLite a read transaction on a read-only connection. A write that lands while
//! the import reads is therefore either wholly in the import or wholly out of it.
//!
//! # Rows, not objects
//! Every query casts timestamps and the allocation ratio to text, so that both databases
//! hand back only integers and strings ([`Cell`]); `convert` turns the rows into records.
//! Placement 16.0.0's schema (alembic head `a082b8bb98d0`, or `422ece571366` whose tables
//! are the same) is the one read; another version is refused before anything is read.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ColumnIndex, ConnectOptions, Connection, Decode, Row, Type};

/// Alembic revisions whose tables this import reads: Placement 16.0.0's head, and the one
/// before it (which only has more indexes).
pub const SUPPORTED_VERSIONS: &[&str] = &["a082b8bb98d0", "422ece571366"];

/// How long connecting to the database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the source database is.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceUrl {
    MySql {
        host: String,
        port: u16,
        socket: Option<String>,
        user: String,
        password: String,
        database: String,
    },
    Sqlite {
        path: PathBuf,
    },
}

impl SourceUrl {
    /// The URL without its password, for messages.
    pub fn describe(&self) -> String {
        match self {
            SourceUrl::MySql {
                socket: Some(socket),
                user,
                database,
                ..
            } => format!("MySQL database {database} as {user} on socket {socket}"),
            SourceUrl::MySql {
                host,
                port,
                user,
                database,
                ..
            } => format!("MySQL database {database} as {user} at {host}:{port}"),
            SourceUrl::Sqlite { path } => format!("SQLite database {}", path.display()),
        }
    }
}

/// Parses a `[placement_database] connection` URL.
pub fn parse_url(url: &str) -> Result<SourceUrl, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "{url:?} is not a database URL: give the `[placement_database] connection` value \
             of placement.conf, e.g. mysql+pymysql://placement:PASS@db-host/placement"
        ));
    };
    let dialect = scheme.split('+').next().unwrap_or_default();
    match dialect {
        "mysql" | "mariadb" => parse_mysql(rest),
        "sqlite" => parse_sqlite(rest),
        other => Err(format!(
            "the {other} database is not supported: placementd imports from MySQL/MariaDB \
             (mysql+pymysql://...) and SQLite (sqlite:///...)"
        )),
    }
}

fn decode(part: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("{part:?} in the database URL is not UTF-8 once percent-decoded"))
}

fn parse_mysql(rest: &str) -> Result<SourceUrl, String> {
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (userinfo, location) = match main.rfind('@') {
        Some(at) => (&main[..at], &main[at + 1..]),
        None => ("", main),
    };
    let (hostport, database) = location.split_once('/').unwrap_or((location, ""));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (user, password, database) = (decode(user)?, decode(password)?, decode(database)?);
    if database.is_empty() {
        return Err("the database URL names no database (…@HOST/placement)".into());
    }
    let mut socket = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "unix_socket" => socket = Some(decode(value)?),
            key if key.starts_with("ssl") => {
                return Err(format!(
                    "the database URL asks for TLS ({key}), which `placementd import` does not \
                     speak: run the import from a host that reaches the database over a \
                     trusted network or its local socket, and drop the ssl parameters"
                ))
            }
            // charset, connect_timeout, plugin, ...: what the driver does anyway or need not.
            _ => {}
        }
    }
    let (host, port) = split_host_port(hostport)?;
    Ok(SourceUrl::MySql {
        host: if host.is_empty() {
            "localhost".into()
        } else {
            host
        },
        port,
        socket,
        user,
        password,
        database,
    })
}

fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let bad = || format!("{hostport:?} in the database URL is not HOST or HOST:PORT");
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 3306,
    };
    Ok((host.to_string(), port))
}

/// SQLAlchemy's rule: `sqlite:///x.db` is relative, `sqlite:////x.db` absolute. Operators
/// often write three slashes for an absolute path; when the relative path does not exist
/// and the absolute one does, that one is meant.
fn parse_sqlite(rest: &str) -> Result<SourceUrl, String> {
    let path = rest.strip_prefix('/').unwrap_or(rest);
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path.is_empty() {
        return Err("an in-memory SQLite URL (sqlite://) has nothing to import".into());
    }
    let relative = PathBuf::from(path);
    let absolute = PathBuf::from(format!("/{}", path.trim_start_matches('/')));
    let path = if !relative.exists() && absolute.exists() {
        absolute
    } else {
        relative
    };
    Ok(SourceUrl::Sqlite { path })
}

/// One value of a row: everything the queries return is an integer, a string or NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Real(f64),
}

/// A row of a table, with the table's name for error messages.
pub struct RowOf<'a> {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub cells: &'a [Cell],
}

impl RowOf<'_> {
    fn cell(&self, i: usize) -> Result<&Cell, String> {
        self.cells.get(i).ok_or_else(|| {
            format!(
                "table {}: the query returned {} columns, {} expected",
                self.table,
                self.cells.len(),
                self.columns.len()
            )
        })
    }

    fn column(&self, i: usize) -> &str {
        self.columns.get(i).copied().unwrap_or("?")
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            Cell::Text(t) => t.trim().parse().map(Some).map_err(|_| self.bad(i, t)),
            Cell::Real(r) => Err(self.bad(i, &r.to_string())),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, String> {
        self.opt_int(i)?.ok_or_else(|| self.null(i))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t.clone())),
            Cell::Int(v) => Ok(Some(v.to_string())),
            Cell::Real(r) => Ok(Some(r.to_string())),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, String> {
        self.opt_text(i)?.ok_or_else(|| self.null(i))
    }

    pub fn real(&self, i: usize) -> Result<f64, String> {
        match self.cell(i)? {
            Cell::Null => Err(self.null(i)),
            Cell::Int(v) => Ok(*v as f64),
            Cell::Real(r) => Ok(*r),
            Cell::Text(t) => t.trim().parse().map_err(|_| self.bad(i, t)),
        }
    }

    fn bad(&self, i: usize, value: &str) -> String {
        format!(
            "table {} column {}: unexpected value {value:?}",
            self.table,
            self.column(i)
        )
    }

    fn null(&self, i: usize) -> String {
        format!(
            "table {} column {}: unexpected NULL",
            self.table,
            self.column(i)
        )
    }
}

/// The raw rows of one table.
pub struct TableRows {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<Cell>>,
}

impl TableRows {
    pub fn iter(&self) -> impl Iterator<Item = RowOf<'_>> {
        self.rows.iter().map(|cells| RowOf {
            table: self.table,
            columns: self.columns,
            cells,
        })
    }
}

/// A query of one table: its name, the columns (for messages) and the SELECT itself.
pub struct Query {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub sql: &'static str,
}

/// Every table an import reads, in the order it reads them. `CAST(... AS CHAR)` is text in
/// both MySQL and SQLite.
pub const QUERIES: &[Query] = &[
    Query {
        table: "resource_classes",
        columns: &["id", "name", "created_at", "updated_at"],
        sql: "SELECT id, name, CAST(created_at AS CHAR), CAST(updated_at AS CHAR) \
              FROM resource_classes ORDER BY id",
    },
    Query {
        table: "traits",
        columns: &["id", "name", "created_at"],
        sql: "SELECT id, name, CAST(created_at AS CHAR) FROM traits ORDER BY id",
    },
    Query {
        table: "resource_providers",
        columns: &[
            "id",
            "uuid",
            "name",
            "generation",
            "root_provider_id",
            "parent_provider_id",
            "created_at",
            "updated_at",
        ],
        sql: "SELECT id, uuid, name, generation, root_provider_id, parent_provider_id, \
              CAST(created_at AS CHAR), CAST(updated_at AS CHAR) \
              FROM resource_providers ORDER BY id",
    },
    Query {
        table: "inventories",
        columns: &[
            "resource_provider_id",
            "resource_class_id",
            "total",
            "reserved",
            "min_unit",
            "max_unit",
            "step_size",
            "allocation_ratio",
        ],
        sql: "SELECT resource_provider_id, resource_class_id, total, reserved, min_unit, \
              max_unit, step_size, CAST(allocation_ratio AS CHAR) FROM inventories ORDER BY id",
    },
    Query {
        table: "placement_aggregates",
        columns: &["id", "uuid"],
        sql: "SELECT id, uuid FROM placement_aggregates ORDER BY id",
    },
    Query {
        table: "resource_provider_aggregates",
        columns: &["resource_provider_id", "aggregate_id"],
        sql: "SELECT resource_provider_id, aggregate_id FROM resource_provider_aggregates",
    },
    Query {
        table: "resource_provider_traits",
        columns: &["resource_provider_id", "trait_id"],
        sql: "SELECT resource_provider_id, trait_id FROM resource_provider_traits",
    },
    Query {
        table: "projects",
        columns: &["id", "external_id"],
        sql: "SELECT id, external_id FROM projects",
    },
    Query {
        table: "users",
        columns: &["id", "external_id"],
        sql: "SELECT id, external_id FROM users",
    },
    Query {
        table: "consumer_types",
        columns: &["id", "name"],
        sql: "SELECT id, name FROM consumer_types",
    },
    Query {
        table: "consumers",
        columns: &[
            "id",
            "uuid",
            "project_id",
            "user_id",
            "generation",
            "consumer_type_id",
            "created_at",
            "updated_at",
        ],
        sql: "SELECT id, uuid, project_id, user_id, generation, consumer_type_id, \
              CAST(created_at AS CHAR), CAST(updated_at AS CHAR) FROM consumers ORDER BY id",
    },
    Query {
        table: "allocations",
        columns: &[
            "resource_provider_id",
            "consumer_id",
            "resource_class_id",
            "used",
        ],
        sql: "SELECT resource_provider_id, consumer_id, resource_class_id, used \
              FROM allocations ORDER BY id",
    },
];

/// Everything read from the source, table by table (in [`QUERIES`]' order).
pub struct Tables {
    pub version: String,
    pub tables: Vec<TableRows>,
}

impl Tables {
    /// The rows of `table` (one of [`QUERIES`]).
    pub fn get(&self, table: &str) -> Result<&TableRows, String> {
        self.tables
            .iter()
            .find(|t| t.table == table)
            .ok_or_else(|| format!("table {table} was not read"))
    }
}

/// An open connection to either database.
enum Conn {
    MySql(MySqlConnection),
    Sqlite(SqliteConnection),
}

/// Reads every table of [`QUERIES`] in one read-only snapshot.
pub async fn read(url: &SourceUrl) -> Result<Tables, String> {
    if let SourceUrl::Sqlite { path } = url {
        if !path.is_file() {
            return Err(format!(
                "there is no SQLite database file at {}: check the path in the URL \
                 (sqlite:////absolute/path.db)",
                path.display()
            ));
        }
    }
    let mut conn = connect(url).await?;
    let what = url.describe();
    let failed = |e: sqlx::Error| format!("reading the {what}: {e}");
    let begin: &[&str] = match conn {
        Conn::MySql(_) => &[
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        ],
        Conn::Sqlite(_) => &["BEGIN"],
    };
    for statement in begin {
        conn.execute(statement).await.map_err(failed)?;
    }
    let version = read_version(&mut conn, &what).await?;
    let mut tables = Vec::with_capacity(QUERIES.len());
    for q in QUERIES {
        let rows = conn.fetch(q.sql).await.map_err(|e| {
            format!(
                "reading table {} of the {what}: {e} (is this Placement 16.0.0's database?)",
                q.table
            )
        })?;
        tables.push(TableRows {
            table: q.table,
            columns: q.columns,
            rows,
        });
    }
    // Read-only: ending the transaction either way changes nothing.
    conn.execute("COMMIT").await.map_err(failed)?;
    conn.close().await;
    Ok(Tables { version, tables })
}

/// The alembic revision, refused unless it is one of [`SUPPORTED_VERSIONS`].
async fn read_version(conn: &mut Conn, what: &str) -> Result<String, String> {
    let rows = conn
        .fetch("SELECT version_num FROM alembic_version")
        .await
        .map_err(|e| {
            format!(
                "the {what} is not a Placement database: it has no readable alembic_version \
                 table ({e}); give the `[placement_database] connection` URL of placement.conf"
            )
        })?;
    let versions: Vec<String> = rows
        .iter()
        .filter_map(|r| match r.first() {
            Some(Cell::Text(t)) => Some(t.clone()),
            _ => None,
        })
        .collect();
    match versions.as_slice() {
        [v] if SUPPORTED_VERSIONS.contains(&v.as_str()) => Ok(v.clone()),
        _ => Err(format!(
            "the {what} has schema version {} (alembic_version), which this import does not \
             read: it reads OpenStack Placement 16.0.0's schema ({}); upgrade Placement and \
             run `placement-manage db sync` first",
            if versions.is_empty() {
                "none".to_string()
            } else {
                versions.join(", ")
            },
            SUPPORTED_VERSIONS.join(" or ")
        )),
    }
}

async fn connect(url: &SourceUrl) -> Result<Conn, String> {
    let what = url.describe();
    let connecting = async {
        match url {
            SourceUrl::MySql {
                host,
                port,
                socket,
                user,
                password,
                database,
            } => {
                let mut options = MySqlConnectOptions::new()
                    .host(host)
                    .port(*port)
                    .username(user)
                    .password(password)
                    .database(database)
                    .ssl_mode(MySqlSslMode::Disabled)
                    .disable_statement_logging();
                if let Some(socket) = socket {
                    options = options.socket(socket);
                }
                options.connect().await.map(Conn::MySql)
            }
            SourceUrl::Sqlite { path } => SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .disable_statement_logging()
                .connect()
                .await
                .map(Conn::Sqlite),
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Err(format!(
            "cannot connect to the {what}: no answer within {CONNECT_TIMEOUT:?}; check the \
             host and port and that the database server runs"
        )),
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(connect_error(&what, e)),
    }
}

/// One sentence for each way connecting fails.
fn connect_error(what: &str, e: sqlx::Error) -> String {
    if let sqlx::Error::Database(db) = &e {
        if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
            return match my.number() {
                1045 => format!(
                    "the {what} refused the user and password of the URL ({}); check the \
                     `[placement_database] connection` credentials",
                    my.message()
                ),
                1044 | 1049 => format!(
                    "cannot open the {what}: {}; check the database name in the URL",
                    my.message()
                ),
                _ => format!("cannot connect to the {what}: {}", my.message()),
            };
        }
    }
    match e {
        sqlx::Error::Io(io) => format!(
            "cannot connect to the {what}: {io}; check the host and port and that the \
             database server runs"
        ),
        e => format!("cannot open the {what}: {e}"),
    }
}

impl Conn {
    async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        match self {
            Conn::MySql(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(|_| ()),
            Conn::Sqlite(c) => sqlx::raw_sql(sql).execute(&mut *c).await.map(|_| ()),
        }
    }

    async fn fetch(&mut self, sql: &str) -> Result<Vec<Vec<Cell>>, sqlx::Error> {
        match self {
            Conn::MySql(c) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut *c).await?;
                Ok(rows.iter().map(cells).collect())
            }
            Conn::Sqlite(c) => {
                let rows = sqlx::raw_sql(sql).fetch_all(&mut *c).await?;
                Ok(rows.iter().map(cells).collect())
            }
        }
    }

    async fn close(self) {
        let _ = match self {
            Conn::MySql(c) => c.close().await,
            Conn::Sqlite(c) => c.close().await,
        };
    }
}

/// The cells of a row: each value decoded as an integer, else a string, else a float.
fn cells<R: Row>(row: &R) -> Vec<Cell>
where
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> f64: Decode<'r, R::Database> + Type<R::Database>,
{
    (0..row.len())
        .map(|i| {
            if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                return v.map_or(Cell::Null, Cell::Int);
            }
            if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                return v.map_or(Cell::Null, Cell::Text);
            }
            match row.try_get::<Option<f64>, _>(i) {
                Ok(v) => v.map_or(Cell::Null, Cell::Real),
                Err(_) => Cell::Null,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(url: &str) -> (String, u16, Option<String>, String, String, String) {
        match parse_url(url).expect("parses") {
            SourceUrl::MySql {
                host,
                port,
                socket,
                user,
                password,
                database,
            } => (host, port, socket, user, password, database),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mysql_urls_as_operators_write_them() {
        assert_eq!(
            mysql("mysql+pymysql://placement:s3cret@10.0.0.5/placement?charset=utf8"),
            (
                "10.0.0.5".into(),
                3306,
                None,
                "placement".into(),
                "s3cret".into(),
                "placement".into()
            )
        );
        let (host, port, _, user, password, _) =
            mysql("mysql://pl%40ce:p%40ss%2Fw:rd@db.example:3307/placement");
        assert_eq!(
            (host.as_str(), port, user.as_str(), password.as_str()),
            ("db.example", 3307, "pl@ce", "p@ss/w:rd")
        );
        let (host, port, socket, ..) =
            mysql("mysql+mysqldb://u:p@/placement?unix_socket=/run/mysqld/mysqld.sock");
        assert_eq!(
            (host.as_str(), port, socket.as_deref()),
            ("localhost", 3306, Some("/run/mysqld/mysqld.sock"))
        );
        let (host, port, ..) = mysql("mysql+pymysql://u:p@[::1]:3308/placement");
        assert_eq!((host.as_str(), port), ("::1", 3308));
    }

    #[test]
    fn bad_urls_are_one_clear_sentence() {
        let err = |url: &str| parse_url(url).expect_err(url);
        assert!(err("placement.example").contains("is not a database URL"));
        assert!(err("postgresql://u:p@h/placement").contains("postgresql database is not"));
        assert!(err("mysql+pymysql://u:p@h/").contains("names no database"));
        assert!(err("mysql+pymysql://u:p@h:x/placement").contains("not HOST or HOST:PORT"));
        assert!(err("mysql+pymysql://u:p@h/placement?ssl_ca=/ca.pem").contains("TLS"));
    }

    #[test]
    fn sqlite_urls_follow_sqlalchemy() {
        let path = |url: &str| match parse_url(url).expect(url) {
            SourceUrl::Sqlite { path } => path,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            path("sqlite:////var/lib/p.db"),
            PathBuf::from("/var/lib/p.db")
        );
        assert_eq!(path("sqlite:///p.db"), PathBuf::from("p.db"));
        // Three slashes and an absolute path that exists: the absolute one.
        assert_eq!(path("sqlite:///tmp"), PathBuf::from("/tmp"));
    }

    #[test]
    fn row_accessors_name_table_and_column() {
        let cells = [
            Cell::Int(3),
            Cell::Text("16".into()),
            Cell::Null,
            Cell::Text("x".into()),
        ];
        let row = RowOf {
            table: "inventories",
            columns: &["id", "allocation_ratio", "name", "total"],
            cells: &cells,
        };
        assert_eq!(row.int(0), Ok(3));
        assert_eq!(row.real(1), Ok(16.0));
        assert_eq!(row.opt_text(2), Ok(None));
        assert_eq!(
            row.text(2),
            Err("table inventories column name: unexpected NULL".into())
        );
        assert_eq!(
            row.int(3),
            Err("table inventories column total: unexpected value \"x\"".into())
        );
        assert!(row.int(9).is_err());
    }
}
