/*
 * C tests of libdbmux against a real database: the URL is argv[1]
 * (a SQLite file URL, or a PostgreSQL URL). Built with
 * -std=c11 -Wall -Wextra -Werror -pedantic, linked once against the shared
 * and once against the static library, and run under AddressSanitizer and
 * UndefinedBehaviorSanitizer by scripts/test-c.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dbmux.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    checks++;                                                                \
    if (!(cond)) {                                                           \
      failures++;                                                            \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                          \
      fprintf(stderr, "\n");                                                 \
    }                                                                        \
  } while (0)

/* Checks a status; on failure prints dbmux's message. */
static void ok(enum dbmux_status s, const char *what) {
  checks++;
  if (s != DBMUX_OK) {
    char *msg = dbmux_last_error_message();
    failures++;
    fprintf(stderr, "%s failed with status %d: %s\n", what, (int)s, msg ? msg : "(no message)");
    dbmux_string_free(msg);
  }
}

static int message_contains(const char *needle) {
  char *msg = dbmux_last_error_message();
  int found = msg != NULL && strstr(msg, needle) != NULL;
  if (!found) fprintf(stderr, "  last error: %s\n", msg ? msg : "(none)");
  dbmux_string_free(msg);
  return found;
}

static struct dbmux_value v_null(void) {
  struct dbmux_value v;
  memset(&v, 0, sizeof v);
  v.type = DBMUX_TYPE_NULL;
  return v;
}
static struct dbmux_value v_int(int64_t i) {
  struct dbmux_value v = v_null();
  v.type = DBMUX_TYPE_INT64;
  v.int64 = i;
  return v;
}
static struct dbmux_value v_real(double d) {
  struct dbmux_value v = v_null();
  v.type = DBMUX_TYPE_DOUBLE;
  v.real = d;
  return v;
}
static struct dbmux_value v_text(const char *s) {
  struct dbmux_value v = v_null();
  v.type = DBMUX_TYPE_TEXT;
  v.ptr = (const uint8_t *)s;
  v.len = strlen(s);
  return v;
}
static struct dbmux_value v_blob(const uint8_t *b, size_t n) {
  struct dbmux_value v = v_null();
  v.type = DBMUX_TYPE_BLOB;
  v.ptr = b;
  v.len = n;
  return v;
}

/* a backup's progress: counts the calls; stops after `limit` (-1: never) */
struct progress {
  int calls;
  int limit;
};

static bool count_progress(uint64_t done, uint64_t total, void *user) {
  struct progress *p = user;
  CHECK(done <= total, "progress %llu of %llu", (unsigned long long)done, (unsigned long long)total);
  p->calls++;
  return p->limit < 0 || p->calls <= p->limit;
}

static int64_t scalar_int(struct dbmux_conn *c, const char *sql) {
  struct dbmux_result *r = NULL;
  bool has = false;
  int64_t v = -1;
  ok(dbmux_query(c, sql, NULL, 0, &r), sql);
  ok(dbmux_result_next(r, &has), "next");
  CHECK(has, "%s returned no row", sql);
  ok(dbmux_result_int64(r, 0, &v), "int64");
  dbmux_result_free(r);
  return v;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  int pg = strncmp(url, "postgres", 8) == 0;
  printf("dbmux C tests against %s (%s)\n", pg ? "PostgreSQL" : "SQLite", dbmux_version());
  CHECK(DBMUX_VERSION_MAJOR == 0 && DBMUX_VERSION_MINOR == 1, "header version");

  /* a bad URL: status and message, out untouched */
  struct dbmux_manager *mgr = NULL;
  CHECK(dbmux_manager_open("mysql://u:pw@h/db", &mgr) == DBMUX_INVALID_URL, "bad url");
  CHECK(mgr == NULL, "out written on failure");
  CHECK(message_contains("unsupported database URL scheme"), "message");
  CHECK(dbmux_manager_open(url, NULL) == DBMUX_MISUSE, "NULL out");

  ok(dbmux_manager_open(url, &mgr), "open");
  struct dbmux_conn *c = NULL;
  ok(dbmux_conn_get(mgr, &c), "conn_get");

  uint64_t n = 0;
  ok(dbmux_execute(c, "DROP TABLE IF EXISTS ctest", NULL, 0, &n), "drop");
  const char *ddl = pg ? "CREATE TABLE ctest (id SERIAL PRIMARY KEY, i BIGINT, r DOUBLE PRECISION, t TEXT, b BYTEA, z TEXT)"
                       : "CREATE TABLE ctest (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, z TEXT)";
  ok(dbmux_execute(c, ddl, NULL, 0, &n), "create");

  /* insert every type */
  const uint8_t blob[] = {0, 1, 2, 254, 255};
  struct dbmux_value params[5];
  params[0] = v_int(INT64_MIN);
  params[1] = v_real(3.25);
  params[2] = v_text("h\xc3\xa9llo \xe2\x9c\x93");
  params[3] = v_blob(blob, sizeof blob);
  params[4] = v_null();
  ok(dbmux_execute(c, "INSERT INTO ctest (i, r, t, b, z) VALUES (?, ?, ?, ?, ?)", params, 5, &n), "insert");
  CHECK(n == 1, "rows affected %llu", (unsigned long long)n);
  int64_t id = 0;
  ok(dbmux_last_insert_id(c, &id), "last_insert_id");
  CHECK(id == 1, "id %lld", (long long)id);

  /* read everything back and compare */
  struct dbmux_result *r = NULL;
  struct dbmux_value idp = v_int(1);
  ok(dbmux_query(c, "SELECT i, r, t, b, z FROM ctest WHERE id = ?", &idp, 1, &r), "select");
  size_t cols = 0;
  ok(dbmux_result_column_count(r, &cols), "column_count");
  CHECK(cols == 5, "cols %zu", cols);
  const char *name = NULL;
  ok(dbmux_result_column_name(r, 2, &name), "column_name");
  CHECK(name && strcmp(name, "t") == 0, "name %s", name ? name : "NULL");
  const char *decl = NULL;
  ok(dbmux_result_column_decltype(r, 3, &decl), "decltype");
  CHECK(decl && (strcmp(decl, "BLOB") == 0 || strcmp(decl, "bytea") == 0), "decltype %s", decl ? decl : "NULL");
  bool has = false;
  ok(dbmux_result_next(r, &has), "next");
  CHECK(has, "a row");
  int64_t i = 0;
  ok(dbmux_result_int64(r, 0, &i), "int64");
  CHECK(i == INT64_MIN, "int64 %lld", (long long)i);
  double d = 0;
  ok(dbmux_result_double(r, 1, &d), "double");
  CHECK(fabs(d - 3.25) < 1e-12, "double %f", d);
  const uint8_t *p = NULL;
  size_t len = 0;
  ok(dbmux_result_text(r, 2, &p, &len), "text");
  CHECK(len == strlen("h\xc3\xa9llo \xe2\x9c\x93") && memcmp(p, "h\xc3\xa9llo \xe2\x9c\x93", len) == 0, "text");
  ok(dbmux_result_blob(r, 3, &p, &len), "blob");
  CHECK(len == sizeof blob && memcmp(p, blob, len) == 0, "blob");
  dbmux_value_type ty;
  ok(dbmux_result_value_type(r, 4, &ty), "value_type");
  CHECK(ty == DBMUX_TYPE_NULL, "null type %d", (int)ty);
  /* wrong-type getters and out-of-range columns */
  CHECK(dbmux_result_int64(r, 2, &i) == DBMUX_TYPE_MISMATCH, "text as int64");
  CHECK(message_contains("not int64"), "type message");
  CHECK(dbmux_result_text(r, 9, &p, &len) == DBMUX_INVALID_PARAMETER, "column 9");
  ok(dbmux_result_next(r, &has), "next");
  CHECK(!has, "one row only");
  dbmux_result_free(r);

  /* a value tag outside DBMUX_TYPE_* is refused with a message (it is a plain
   * integer that dbmux checks, so a wrong one is never undefined behaviour) */
  struct dbmux_value bad = v_int(1);
  bad.type = 42;
  CHECK(dbmux_execute(c, "SELECT ?", &bad, 1, &n) == DBMUX_INVALID_PARAMETER, "an invalid value tag");
  CHECK(message_contains("params[0].type is 42"), "invalid tag message");
  bad.type = -1;
  CHECK(dbmux_execute(c, "SELECT ?", &bad, 1, &n) == DBMUX_INVALID_PARAMETER, "a negative value tag");

  /* every status has its name */
  CHECK(strcmp(dbmux_status_name(DBMUX_OK), "ok") == 0, "ok");
  CHECK(strcmp(dbmux_status_name(DBMUX_POOL_TIMEOUT), "pool_timeout") == 0, "pool_timeout");
  CHECK(strcmp(dbmux_status_name(DBMUX_COMMIT_UNKNOWN), "commit_unknown") == 0, "commit_unknown");
  CHECK(dbmux_status_name(50) == NULL, "no status 50");
  CHECK(strcmp(dbmux_status_name(DBMUX_AUTH_FAILED), "auth_failed") == 0, "auth_failed");
  CHECK(strcmp(dbmux_status_name(DBMUX_TLS_FAILED), "tls_failed") == 0, "tls_failed");

  /* a permanent connect error is returned at once (pool_timeout is 30 s):
   * a missing SQLite file that mode=rw may not create */
  {
    char missing[128];
    snprintf(missing, sizeof missing, "sqlite:////tmp/dbmux-c-missing-%ld.db?mode=rw", (long)getpid());
    struct dbmux_manager *m = NULL;
    ok(dbmux_manager_open(missing, &m), "open on a missing file");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct dbmux_conn *none = NULL;
    CHECK(dbmux_conn_get(m, &none) == DBMUX_DATABASE_NOT_FOUND, "missing file is DATABASE_NOT_FOUND");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(secs < 2.0, "told at once, not after pool_timeout (%.2f s)", secs);
    CHECK(message_contains("does not exist"), "missing-file message");
    CHECK(none == NULL, "no connection");
    dbmux_manager_close(m);
  }

  /* SQL error */
  CHECK(dbmux_execute(c, "SELEC 1", NULL, 0, &n) == DBMUX_SQL, "syntax error");
  CHECK(message_contains("syntax error"), "syntax message");

  /* transactions */
  CHECK(dbmux_commit(c) == DBMUX_MISUSE, "commit without begin");
  ok(dbmux_begin(c), "begin");
  ok(dbmux_execute(c, "DELETE FROM ctest", NULL, 0, &n), "delete");
  ok(dbmux_rollback(c), "rollback");
  CHECK(scalar_int(c, "SELECT count(*) FROM ctest") == 1, "rollback kept the row");
  ok(dbmux_begin(c), "begin");
  struct dbmux_value two = v_int(2);
  ok(dbmux_execute(c, "INSERT INTO ctest (i) VALUES (?)", &two, 1, &n), "insert in tx");
  ok(dbmux_commit(c), "commit");
  CHECK(scalar_int(c, "SELECT count(*) FROM ctest") == 2, "commit kept the row");
  /* an open transaction is rolled back on release */
  ok(dbmux_begin(c), "begin");
  ok(dbmux_execute(c, "DELETE FROM ctest", NULL, 0, &n), "delete");
  dbmux_conn_release(c);
  ok(dbmux_conn_get(mgr, &c), "conn_get again");
  CHECK(scalar_int(c, "SELECT count(*) FROM ctest") == 2, "released transaction rolled back");

  /* read-your-writes: a write token, then a reader that has the write; a
   * reader refuses writes */
  {
    char *token = (char *)1;
    ok(dbmux_conn_write_token(c, &token), "write_token before a write");
    CHECK(token == NULL, "no token before a write in this checkout");
    struct dbmux_value three = v_int(3);
    ok(dbmux_execute(c, "INSERT INTO ctest (i) VALUES (?)", &three, 1, &n), "insert for the token");
    ok(dbmux_conn_write_token(c, &token), "write_token");
    CHECK(token != NULL && strncmp(token, pg ? "pg:" : "sqlite", pg ? 3 : 6) == 0, "token %s",
          token ? token : "NULL");
    struct dbmux_conn *rd = NULL;
    ok(dbmux_conn_get_read(mgr, token, &rd), "get_read after the token");
    CHECK(scalar_int(rd, "SELECT count(*) FROM ctest WHERE i = 3") == 1, "the reader sees the write");
    CHECK(dbmux_execute(rd, "DELETE FROM ctest", NULL, 0, &n) == DBMUX_READ_ONLY, "a reader refuses writes");
    CHECK(message_contains("get()"), "read-only message says to use get()");
    char *none = (char *)1;
    ok(dbmux_conn_write_token(rd, &none), "write_token on a reader");
    CHECK(none == NULL, "a reader has no token");
    dbmux_conn_release(rd);
    dbmux_string_free(token);
    rd = NULL;
    ok(dbmux_conn_get_read(mgr, NULL, &rd), "get_read without a token");
    dbmux_conn_release(rd);
    rd = NULL;
    CHECK(dbmux_conn_get_read(mgr, "pg:one:0/0", &rd) == DBMUX_INVALID_PARAMETER, "a bad token");
    CHECK(message_contains("not a write token"), "bad token message");
    CHECK(rd == NULL, "no reader for a bad token");
    CHECK(dbmux_conn_write_token(NULL, &token) == DBMUX_MISUSE, "NULL conn");
    ok(dbmux_execute(c, "DELETE FROM ctest WHERE i = 3", NULL, 0, &n), "clean up");
  }

  /* A COMMIT refused by a deferred constraint is that constraint (not
   * commit_unknown), and the transaction is rolled back. */
  ok(dbmux_execute(c, "CREATE TABLE cparent (id INTEGER PRIMARY KEY)", NULL, 0, &n), "parent");
  ok(dbmux_execute(c, "CREATE TABLE cchild (p INTEGER REFERENCES cparent (id) DEFERRABLE INITIALLY DEFERRED)",
                   NULL, 0, &n),
     "child");
  ok(dbmux_begin(c), "begin");
  ok(dbmux_execute(c, "INSERT INTO cchild VALUES (42)", NULL, 0, &n), "orphan");
  CHECK(dbmux_commit(c) == DBMUX_CONSTRAINT, "a deferred foreign key fails the COMMIT as a constraint");
  CHECK(scalar_int(c, "SELECT count(*) FROM cchild") == 0, "the refused transaction was rolled back");
  ok(dbmux_begin(c), "no transaction is left open");
  ok(dbmux_rollback(c), "rollback");
  ok(dbmux_execute(c, "DROP TABLE cchild", NULL, 0, &n), "drop child");
  ok(dbmux_execute(c, "DROP TABLE cparent", NULL, 0, &n), "drop parent");

  /* PostgreSQL: a COMMIT whose connection is lost is DBMUX_COMMIT_UNKNOWN,
   * never the retryable DBMUX_CONNECT_FAILED (a retry could apply it twice). */
  if (pg) {
    struct dbmux_conn *victim = NULL;
    ok(dbmux_conn_get(mgr, &victim), "second connection");
    ok(dbmux_begin(victim), "begin on the victim");
    struct dbmux_value three = v_int(3);
    ok(dbmux_execute(victim, "INSERT INTO ctest (i) VALUES (?)", &three, 1, &n), "insert on the victim");
    int64_t pid = scalar_int(victim, "SELECT pg_backend_pid()");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)pid);
    ok(dbmux_execute(c, sql, NULL, 0, &n), "terminate the victim's backend");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %lld", (long long)pid);
    for (int i = 0; i < 500 && scalar_int(c, sql) != 0; i++) {
      struct timespec ms = {0, 10 * 1000 * 1000};
      nanosleep(&ms, NULL);
    }
    CHECK(dbmux_commit(victim) == DBMUX_COMMIT_UNKNOWN, "a COMMIT on a lost connection");
    CHECK(message_contains("outcome of COMMIT is unknown"), "commit_unknown message");
    dbmux_conn_release(victim);
    CHECK(scalar_int(c, "SELECT count(*) FROM ctest") == 2, "the lost transaction did not apply");
  }

  /* health and debug JSON */
  char *json = NULL;
  ok(dbmux_health_json(mgr, &json), "health");
  CHECK(json && strstr(json, "\"status\":\"healthy\""), "health %s", json ? json : "NULL");
  dbmux_string_free(json);
  ok(dbmux_debug_info_json(mgr, &json), "debug");
  CHECK(json && strstr(json, "\"session_creation_count\""), "debug %s", json ? json : "NULL");
  if (!pg)
    CHECK(json && strstr(json, "\"wal_controlled\":true") && strstr(json, "\"gate_closures\":"),
          "the sqlite section of debug %s", json ? json : "NULL");
  dbmux_string_free(json);

  /* metrics: the Prometheus text, its checkouts counted, no password in it */
  char *metrics = NULL;
  ok(dbmux_manager_metrics(mgr, &metrics), "metrics");
  CHECK(metrics && strstr(metrics, "# TYPE dbmux_checkouts_total counter\n") &&
            strstr(metrics, "dbmux_statement_seconds_count{") &&
            strstr(metrics, pg ? "backend=\"postgresql\"" : "backend=\"sqlite\""),
        "metrics %s", metrics ? metrics : "NULL");
  const char *pw = getenv("DBMUX_TEST_PG_PASSWORD");
  if (pw && *pw) CHECK(metrics && !strstr(metrics, pw), "the password is in the metrics");
  dbmux_string_free(metrics);
  metrics = NULL;
  ok(dbmux_manager_metrics_openmetrics(mgr, &metrics), "openmetrics");
  CHECK(metrics && strstr(metrics, "# TYPE dbmux_checkouts counter\n") &&
            strcmp(metrics + strlen(metrics) - 6, "# EOF\n") == 0,
        "openmetrics %s", metrics ? metrics : "NULL");
  dbmux_string_free(metrics);

  /* online backup and restore (SQLite), with a progress callback that can cancel */
  if (!pg) {
    char dest[256];
    snprintf(dest, sizeof dest, "/tmp/dbmux-c-backup-%ld.db", (long)getpid());
    unlink(dest);
    struct progress p = {0, -1};
    char *report = NULL;
    ok(dbmux_backup(mgr, dest, 0, count_progress, &p, &report), "backup");
    CHECK(p.calls >= 1, "progress was reported (%d)", p.calls);
    CHECK(report && strstr(report, "\"bytes\":"), "report %s", report ? report : "NULL");
    dbmux_string_free(report);
    CHECK(dbmux_backup(mgr, dest, 0, NULL, NULL, NULL) == DBMUX_INVALID_PARAMETER, "dest exists");
    CHECK(message_contains("overwrite"), "exists message");
    struct progress stop = {0, 0};
    CHECK(dbmux_backup(mgr, dest, DBMUX_BACKUP_OVERWRITE, count_progress, &stop, NULL) == DBMUX_CANCELLED,
          "cancelled by the callback");
    CHECK(dbmux_backup(mgr, dest, 8, NULL, NULL, NULL) == DBMUX_INVALID_PARAMETER, "unknown flag");
    ok(dbmux_backup(mgr, dest, DBMUX_BACKUP_OVERWRITE | DBMUX_BACKUP_COMPACT, NULL, NULL, NULL), "compact");
    ok(dbmux_execute(c, "DELETE FROM ctest", NULL, 0, &n), "delete before restore");
    ok(dbmux_restore(mgr, dest), "restore");
    CHECK(scalar_int(c, "SELECT count(*) FROM ctest") == 2, "restored rows");
    CHECK(dbmux_restore(mgr, "/nonexistent/x.db") == DBMUX_INVALID_PARAMETER, "a missing source");
    unlink(dest);
  } else {
    CHECK(dbmux_backup(mgr, "/tmp/x.db", 0, NULL, NULL, NULL) == DBMUX_MISUSE, "backup is for SQLite");
    CHECK(message_contains("pg_dump"), "points to pg_dump");
  }

  ok(dbmux_execute(c, "DROP TABLE ctest", NULL, 0, &n), "drop");

  /* migrations: the fixture directory of tests/migrate.rs, from scratch */
  ok(dbmux_execute(c, "DROP TABLE IF EXISTS notes", NULL, 0, &n), "drop notes");
  ok(dbmux_execute(c, "DROP TABLE IF EXISTS _dbmux_migrations", NULL, 0, &n), "drop ledger");
  char *report = NULL;
  ok(dbmux_migrate_dir(mgr, "tests/migrations", &report), "migrate");
  CHECK(report && strstr(report, "{\"version\":1,\"name\":\"create_notes\",\"file\":\"V0001__create_notes.sql\""),
        "report %s", report ? report : "NULL");
  CHECK(report && strstr(report, pg ? "\"file\":\"V0002__seed.postgres.sql\"" : "\"file\":\"V0002__seed.sqlite.sql\""),
        "the backend's variant ran: %s", report ? report : "NULL");
  CHECK(report && strstr(report, "\"already_applied\":0"), "none before");
  dbmux_string_free(report);
  report = NULL;
  ok(dbmux_migrate_dir(mgr, "tests/migrations", &report), "migrate again");
  CHECK(report && strstr(report, "\"applied\":[],\"already_applied\":2"), "nothing to do: %s", report ? report : "NULL");
  dbmux_string_free(report);
  CHECK(scalar_int(c, "SELECT count(*) FROM notes") == 1, "the seed row");
  char *status = NULL;
  ok(dbmux_migration_status(mgr, "tests/migrations", &status), "status");
  CHECK(status && strstr(status, "\"applied\":2,\"pending\":0,\"problems\":[]"), "status %s", status ? status : "NULL");
  /* the script compares this document with the CLI's (Rust's) */
  const char *status_out = getenv("DBMUX_C_MIGRATION_STATUS");
  if (status_out && status) {
    FILE *f = fopen(status_out, "w");
    CHECK(f != NULL, "open %s", status_out);
    if (f) {
      fputs(status, f);
      fclose(f);
    }
  }
  dbmux_string_free(status);
  CHECK(dbmux_migration_status(mgr, "tests/migrations", NULL) == DBMUX_MISUSE, "NULL out");
  CHECK(dbmux_migrate_dir(mgr, "/nonexistent/migrations", NULL) == DBMUX_IO, "a missing directory");
  CHECK(message_contains("cannot read the migrations directory /nonexistent/migrations"), "names it");
  char baddir[] = "/tmp/dbmux-c-migrations-XXXXXX";
  CHECK(mkdtemp(baddir) != NULL, "mkdtemp");
  char file[300];
  snprintf(file, sizeof file, "%s/001_create.sql", baddir);
  FILE *f = fopen(file, "w");
  CHECK(f != NULL, "create %s", file);
  if (f) {
    fputs("SELECT 1;", f);
    fclose(f);
  }
  CHECK(dbmux_migrate_dir(mgr, baddir, NULL) == DBMUX_MIGRATION, "a malformed name");
  CHECK(message_contains("001_create.sql: name it V<version>__<name>.sql"), "says how to name it");
  unlink(file);
  rmdir(baddir);
  ok(dbmux_execute(c, "DROP TABLE notes", NULL, 0, &n), "drop notes");
  ok(dbmux_execute(c, "DROP TABLE _dbmux_migrations", NULL, 0, &n), "drop ledger");
  dbmux_conn_release(c);
  dbmux_manager_close(mgr);

  /* a checkout timeout: pool 1, overflow 0 */
  setenv("DB_POOL_SIZE", "1", 1);
  setenv("DB_MAX_OVERFLOW", "0", 1);
  setenv("DB_POOL_TIMEOUT", "0.3", 1);
  ok(dbmux_manager_open(url, &mgr), "open small");
  unsetenv("DB_POOL_SIZE");
  unsetenv("DB_MAX_OVERFLOW");
  unsetenv("DB_POOL_TIMEOUT");
  struct dbmux_conn *held = NULL, *second = NULL;
  ok(dbmux_conn_get(mgr, &held), "first");
  CHECK(dbmux_conn_get(mgr, &second) == DBMUX_POOL_TIMEOUT, "second times out");
  CHECK(second == NULL, "out untouched");
  CHECK(message_contains("pool_size=1"), "timeout message");
  dbmux_conn_release(held);
  dbmux_manager_close(mgr);

  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
