//! Quickstart on the embedded default: no configuration at all.
//!
//! Creates `dbmux.db` in the current directory (unless `DATABASE_URL` says
//! otherwise), writes and reads rows, and prints health and debug JSON.
//!
//! Run with `cargo run --example quickstart`.

fn main() -> Result<(), dbmux::Error> {
    let db = dbmux::global()?;
    db.connect_check()?;

    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS notes (
             id    INTEGER PRIMARY KEY,
             body  TEXT NOT NULL,
             stars REAL
         )",
    )?;

    // A write transaction: both rows or neither.
    db.transaction(|tx| {
        tx.execute(
            "INSERT INTO notes (body, stars) VALUES (?, ?)",
            dbmux::params!["hello from dbmux", 4.5],
        )?;
        tx.execute(
            "INSERT INTO notes (body, stars) VALUES (?, ?)",
            dbmux::params!["no stars yet", None::<f64>],
        )?;
        Ok::<_, dbmux::Error>(())
    })?;

    let rows = db.query(
        "SELECT id, body, stars FROM notes ORDER BY id DESC LIMIT 2",
        dbmux::params![],
    )?;
    for row in &rows {
        let id: i64 = row.get("id")?;
        let body: String = row.get("body")?;
        let stars: Option<f64> = row.get("stars")?;
        println!("note {id}: {body} (stars: {stars:?})");
    }
    let total: i64 = db.query_scalar("SELECT count(*) FROM notes", dbmux::params![])?;
    println!("{total} notes in {}", db.config().redacted_url());

    println!("health: {}", db.check_health().to_json());
    println!("debug:  {}", db.debug_info().to_json());

    dbmux::shutdown();
    Ok(())
}
