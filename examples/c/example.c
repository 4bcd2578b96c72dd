/*
 * A small C program using libdbmux on the embedded default (./dbmux.db).
 *
 * Build, with the library installed (scripts/install-c.sh PREFIX):
 *   cc examples/c/example.c $(pkg-config --cflags --libs dbmux) -o example
 *   ./example
 * or from the repository's build directory:
 *   cargo build -p dbmux-ffi --release
 *   cc -std=c11 -Ibindings/c examples/c/example.c -Ltarget/release -ldbmux \
 *      -Wl,-rpath,$PWD/target/release -o example
 */
#include <stdio.h>

#include "dbmux.h"

static int check(enum dbmux_status s) {
  if (s != DBMUX_OK) {
    char *msg = dbmux_last_error_message();
    fprintf(stderr, "dbmux error %d: %s\n", (int)s, msg ? msg : "");
    dbmux_string_free(msg);
    return 1;
  }
  return 0;
}

int main(void) {
  struct dbmux_manager *mgr = NULL; /* borrowed: do not close */
  struct dbmux_conn *conn = NULL;
  struct dbmux_result *rows = NULL;
  uint64_t n = 0;
  bool has = false;
  int64_t count = 0;
  char *health = NULL;

  if (check(dbmux_global(&mgr))) return 1;
  if (check(dbmux_conn_get(mgr, &conn))) return 1;
  if (check(dbmux_execute(conn, "CREATE TABLE IF NOT EXISTS visits (at TEXT)", NULL, 0, &n))) return 1;
  if (check(dbmux_execute(conn, "INSERT INTO visits VALUES (datetime('now'))", NULL, 0, &n))) return 1;
  if (check(dbmux_query(conn, "SELECT count(*) FROM visits", NULL, 0, &rows))) return 1;
  if (check(dbmux_result_next(rows, &has)) || !has) return 1;
  if (check(dbmux_result_int64(rows, 0, &count))) return 1;
  printf("%lld visits\n", (long long)count);
  dbmux_result_free(rows);
  dbmux_conn_release(conn);
  if (check(dbmux_health_json(mgr, &health))) return 1;
  printf("%s\n", health);
  dbmux_string_free(health);
  dbmux_global_shutdown();
  return 0;
}
