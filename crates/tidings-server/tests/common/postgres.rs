//! A fresh PostgreSQL database for each test, on the server named by TIDINGS_TEST_POSTGRES_URL (scripts/test starts
//! a throwaway one), dropped when the test ends, so that tests run in parallel without seeing each other.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The URL of a PostgreSQL database the tests may create databases from.
pub const URL_VAR: &str = "TIDINGS_TEST_POSTGRES_URL";
/// Set to 1 to skip the PostgreSQL variants when no server is at hand.
pub const SKIP_VAR: &str = "TIDINGS_TEST_SKIP_POSTGRES";

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its name.
    pub name: String,
    /// The URL that reaches it, for `storage.url`.
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database for `test`. `None`, after saying so, when the PostgreSQL variants are skipped.
    ///
    /// Panics when TIDINGS_TEST_POSTGRES_URL is not set and skipping was not asked for: a PostgreSQL test must
    /// never pass without having run on PostgreSQL.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let admin_url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var(SKIP_VAR).as_deref() == Ok("1") => {
                eprintln!("skipped {test} on PostgreSQL: {SKIP_VAR}=1");
                return None;
            }
            _ => panic!(
                "{test} needs PostgreSQL but {URL_VAR} is not set: run scripts/test, which starts a throwaway \
                 PostgreSQL, or set {SKIP_VAR}=1 to skip the PostgreSQL variants"
            ),
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tidings_test_{}_{}_{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let database = TestDatabase { url: with_database(&admin_url, &name), name, admin_url };
        database.admin(&format!("CREATE DATABASE {}", database.name)).await;
        Some(database)
    }

    /// Makes the database refuse every connection, and ends those it has, until `allow_connections`.
    pub async fn refuse_connections(&self) {
        self.admin(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", self.name)).await;
        // The timeout makes pg_terminate_backend wait until each backend is gone, so no request slips through.
        self.admin(&format!(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ))
        .await;
    }

    /// Lets clients connect again.
    pub async fn allow_connections(&self) {
        self.admin(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.name)).await;
    }

    /// Runs one statement on the database named by TIDINGS_TEST_POSTGRES_URL, as its administrator, outside the
    /// test database (ALTER DATABASE, terminating backends).
    pub async fn admin(&self, sql: &str) {
        run_admin(&self.admin_url, sql).await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop is not async, and the test's runtime may be shutting down: a thread with its own runtime drops
        // the database, forcing out any connection a server still holds.
        let (admin_url, sql) = (self.admin_url.clone(), format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(run_admin(&admin_url, &sql));
        })
        .join();
        if dropped.is_err() {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

async fn run_admin(admin_url: &str, sql: &str) {
    let mut connection = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR} ({admin_url}): {e}"));
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = connection.close().await;
}

/// `url` with its database (the path) replaced by `name`, keeping user, host and query.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |n| n + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}
