/*
 * One SQLite per process, from C. The program links the system libsqlite3
 * itself and libdbmux beside it.
 *
 *   test_one_sqlite DIR SECONDS
 *     libdbmux as installed (linked to the system libsqlite3): checks that
 *     dbmux_sqlite_version() is the host's sqlite3_libversion(), that no
 *     second-copy warning is logged, then writes one database file for
 *     SECONDS from 3 threads through dbmux and 2 threads through libsqlite3
 *     directly, each opening and closing connections often; afterwards
 *     integrity_check is ok and every acknowledged row is present.
 *
 *   test_one_sqlite DIR --expect-second-copy
 *     libdbmux built with `bundled` (its own SQLite): the first open logs
 *     exactly one WARN naming both copies.
 *
 * Built with -std=c11 -Wall -Wextra -Werror -pedantic by scripts/test-c.sh.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "dbmux.h"

#define DBMUX_WRITERS 3
#define SQLITE_WRITERS 2
#define ROWS_PER_TX 3

static int failures = 0;
static int checks = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* `cond` is evaluated before the lock is taken: it may CHECK too. */
#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    int check_ok_ = (cond) ? 1 : 0;                                          \
    pthread_mutex_lock(&lock);                                               \
    checks++;                                                                \
    if (!check_ok_) {                                                        \
      failures++;                                                            \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                          \
      fprintf(stderr, "\n");                                                 \
    }                                                                        \
    pthread_mutex_unlock(&lock);                                             \
  } while (0)

/* ------------------------------------------------------------ logging -- */

static int copy_warnings = 0;
static char copy_warning[4096];

static void on_log(int32_t level, const char *target, const char *message, void *user_data) {
  (void)user_data;
  if (level == 2 && strcmp(target, "dbmux::sqlite") == 0 &&
      strstr(message, "more than one SQLite library") != NULL) {
    pthread_mutex_lock(&lock);
    copy_warnings++;
    snprintf(copy_warning, sizeof copy_warning, "%s", message);
    pthread_mutex_unlock(&lock);
  }
}

/* ------------------------------------------------------------ writers -- */

struct writer {
  const char *path;
  char url[4200];
  char who[32];
  double deadline;
  long acked; /* rows whose COMMIT returned success */
  char error[512];
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void dbmux_error(struct writer *w, const char *what, enum dbmux_status s) {
  char *msg = dbmux_last_error_message();
  snprintf(w->error, sizeof w->error, "%s: %s failed with status %d: %s", w->who, what, (int)s,
           msg ? msg : "(no message)");
  dbmux_string_free(msg);
}

static struct dbmux_value v_text(const char *s) {
  struct dbmux_value v;
  memset(&v, 0, sizeof v);
  v.type = DBMUX_TYPE_TEXT;
  v.ptr = (const uint8_t *)s;
  v.len = strlen(s);
  return v;
}

static struct dbmux_value v_int(int64_t i) {
  struct dbmux_value v;
  memset(&v, 0, sizeof v);
  v.type = DBMUX_TYPE_INT64;
  v.int64 = i;
  return v;
}

/* A fresh pool for every few transactions, so dbmux's connections open and
 * close the file as often as the other side's do. */
static void *dbmux_writer(void *arg) {
  struct writer *w = arg;
  enum dbmux_status s;
  while (now() < w->deadline && w->error[0] == 0) {
    struct dbmux_manager *m = NULL;
    if ((s = dbmux_manager_open(w->url, &m)) != DBMUX_OK) {
      dbmux_error(w, "dbmux_manager_open", s);
      break;
    }
    for (int tx = 0; tx < 4 && w->error[0] == 0; tx++) {
      struct dbmux_conn *c = NULL;
      if ((s = dbmux_conn_get(m, &c)) != DBMUX_OK) {
        dbmux_error(w, "dbmux_conn_get", s);
        break;
      }
      if ((s = dbmux_begin(c)) != DBMUX_OK) dbmux_error(w, "dbmux_begin", s);
      for (int i = 0; i < ROWS_PER_TX && w->error[0] == 0; i++) {
        struct dbmux_value p[2] = {v_text(w->who), v_int(w->acked + i)};
        s = dbmux_execute(c, "INSERT INTO t (who, n, pad) VALUES (?, ?, zeroblob(300))", p, 2, NULL);
        if (s != DBMUX_OK) dbmux_error(w, "INSERT", s);
      }
      if (w->error[0] == 0) {
        if ((s = dbmux_commit(c)) != DBMUX_OK)
          dbmux_error(w, "dbmux_commit", s);
        else
          w->acked += ROWS_PER_TX;
      }
      dbmux_conn_release(c);
    }
    dbmux_manager_close(m);
  }
  return NULL;
}

static void sqlite_error(struct writer *w, sqlite3 *db, const char *what, int rc) {
  snprintf(w->error, sizeof w->error, "%s: %s failed (%d): %s", w->who, what, rc,
           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* A new libsqlite3 connection for every transaction, as a host's own
 * admin code would do. */
static void *sqlite_writer(void *arg) {
  struct writer *w = arg;
  while (now() < w->deadline && w->error[0] == 0) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(w->path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
      sqlite_error(w, db, "sqlite3_open_v2", rc);
      sqlite3_close(db);
      break;
    }
    sqlite3_busy_timeout(db, 30000);
    sqlite3_stmt *st = NULL;
    if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK) {
      sqlite_error(w, db, "BEGIN IMMEDIATE", rc);
    } else if ((rc = sqlite3_prepare_v2(db, "INSERT INTO t (who, n, pad) VALUES (?, ?, zeroblob(300))",
                                        -1, &st, NULL)) != SQLITE_OK) {
      sqlite_error(w, db, "prepare", rc);
    } else {
      for (int i = 0; i < ROWS_PER_TX && w->error[0] == 0; i++) {
        sqlite3_bind_text(st, 1, w->who, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, w->acked + i);
        if ((rc = sqlite3_step(st)) != SQLITE_DONE) sqlite_error(w, db, "INSERT", rc);
        sqlite3_reset(st);
      }
      sqlite3_finalize(st);
      if (w->error[0] == 0) {
        if ((rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
          sqlite_error(w, db, "COMMIT", rc);
        else
          w->acked += ROWS_PER_TX;
      }
    }
    sqlite3_close(db);
  }
  return NULL;
}

/* -------------------------------------------------------------- checks -- */

static void open_once(const char *url) {
  struct dbmux_manager *m = NULL;
  struct dbmux_conn *c = NULL;
  CHECK(dbmux_manager_open(url, &m) == DBMUX_OK, "open %s", url);
  CHECK(dbmux_conn_get(m, &c) == DBMUX_OK, "checkout");
  CHECK(dbmux_execute(c, "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, who TEXT NOT NULL, "
                         "n INTEGER NOT NULL, pad BLOB, UNIQUE (who, n))",
                      NULL, 0, NULL) == DBMUX_OK,
        "create table");
  dbmux_conn_release(c);
  dbmux_manager_close(m);
}

static int64_t scalar(sqlite3 *db, const char *sql, const char *who) {
  sqlite3_stmt *st = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (who) sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  }
  CHECK(v >= 0 || !who, "%s: %s", sql, sqlite3_errmsg(db));
  sqlite3_finalize(st);
  return v;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DIR SECONDS | %s DIR --expect-second-copy\n", argv[0], argv[0]);
    return 2;
  }
  char path[4096], url[4200];
  snprintf(path, sizeof path, "%s/one.db", argv[1]);
  snprintf(url, sizeof url, "sqlite:///%s", path); /* four slashes: absolute */
  CHECK(dbmux_set_log_callback(on_log, NULL) == DBMUX_OK, "log callback");
  const char *mine = dbmux_sqlite_version();
  CHECK(mine != NULL, "dbmux_sqlite_version() is NULL");

  if (strcmp(argv[2], "--expect-second-copy") == 0) {
    /* The host uses its own SQLite before dbmux opens anything. */
    printf("dbmux C second-copy test: host SQLite %s, dbmux SQLite %s (%s)\n", sqlite3_libversion(),
           mine ? mine : "?", dbmux_version());
    CHECK(strstr(dbmux_version(), "bundled") != NULL, "this mode needs a bundled libdbmux: %s",
          dbmux_version());
    open_once(url);
    open_once(url);
    CHECK(copy_warnings == 1, "%d second-copy warnings, expected exactly one", copy_warnings);
    CHECK(strstr(copy_warning, "libsqlite3.so") != NULL, "the host's copy is named: %s", copy_warning);
    CHECK(strstr(copy_warning, "libdbmux") != NULL, "dbmux's copy is named: %s", copy_warning);
    CHECK(strstr(copy_warning, "link a single SQLite") != NULL, "the advice is given: %s", copy_warning);
  } else {
    double seconds = atof(argv[2]);
    printf("dbmux C one-SQLite test: %.0f s, host SQLite %s, dbmux SQLite %s (%s)\n", seconds,
           sqlite3_libversion(), mine ? mine : "?", dbmux_version());
    CHECK(mine != NULL && strcmp(mine, sqlite3_libversion()) == 0, "dbmux runs on SQLite %s, the host on %s",
          mine ? mine : "?", sqlite3_libversion());
    open_once(url);
    CHECK(copy_warnings == 0, "an unexpected second-copy warning: %s", copy_warning);

    struct writer w[DBMUX_WRITERS + SQLITE_WRITERS];
    pthread_t th[DBMUX_WRITERS + SQLITE_WRITERS];
    double deadline = now() + seconds;
    for (int i = 0; i < DBMUX_WRITERS + SQLITE_WRITERS; i++) {
      memset(&w[i], 0, sizeof w[i]);
      w[i].path = path;
      snprintf(w[i].url, sizeof w[i].url, "%s", url);
      snprintf(w[i].who, sizeof w[i].who, "%s-%d", i < DBMUX_WRITERS ? "dbmux" : "sqlite3", i);
      w[i].deadline = deadline;
      pthread_create(&th[i], NULL, i < DBMUX_WRITERS ? dbmux_writer : sqlite_writer, &w[i]);
    }
    long total = 0;
    for (int i = 0; i < DBMUX_WRITERS + SQLITE_WRITERS; i++) {
      pthread_join(th[i], NULL);
      CHECK(w[i].error[0] == 0, "%s", w[i].error);
      CHECK(w[i].acked > 30, "%s wrote only %ld rows", w[i].who, w[i].acked);
      total += w[i].acked;
    }

    /* Afterwards: the file is intact and holds exactly the acknowledged
     * rows (UNIQUE (who, n) with n = 0..acked-1 makes count, min and max
     * pin down the set). */
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK, "reopen");
    sqlite3_stmt *st = NULL;
    const unsigned char *verdict = NULL;
    char integrity[256] = "(no answer)";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && (verdict = sqlite3_column_text(st, 0)) != NULL)
      snprintf(integrity, sizeof integrity, "%s", (const char *)verdict);
    sqlite3_finalize(st);
    CHECK(strcmp(integrity, "ok") == 0, "integrity_check: %s", integrity);
    CHECK(scalar(db, "SELECT count(*) FROM t", NULL) == total, "%ld rows acknowledged in all", total);
    for (int i = 0; i < DBMUX_WRITERS + SQLITE_WRITERS; i++) {
      int64_t n = scalar(db, "SELECT count(*) FROM t WHERE who = ?", w[i].who);
      int64_t lo = scalar(db, "SELECT coalesce(min(n), -1) FROM t WHERE who = ?", w[i].who);
      int64_t hi = scalar(db, "SELECT coalesce(max(n), -1) FROM t WHERE who = ?", w[i].who);
      CHECK(n == w[i].acked && lo == 0 && hi == w[i].acked - 1,
            "%s: %lld rows stored (n %lld..%lld), %ld acknowledged", w[i].who, (long long)n, (long long)lo,
            (long long)hi, w[i].acked);
    }
    sqlite3_close(db);
    printf("  %ld rows acknowledged; integrity_check: %s\n", total, integrity);
    CHECK(copy_warnings == 0, "an unexpected second-copy warning: %s", copy_warning);
  }

  dbmux_set_log_callback(NULL, NULL);
  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
