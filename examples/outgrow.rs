//! An app that outgrows its SQLite file (the README's "From one file to
//! PostgreSQL"). The same code runs on either database; `DATABASE_URL`
//! picks it (without it, `./dbmux.db`).
//!
//! Each run applies the migrations compiled into the binary, reads every
//! order written so far back and checks it, then writes more:
//!
//! ```text
//! DATABASE_URL=sqlite:///shop.db cargo run --example outgrow -- 200
//! dbmux migrate --url postgresql://... --dir examples/outgrow/migrations
//! dbmux copy --from sqlite:///shop.db --to postgresql://...
//! DATABASE_URL=postgresql://... cargo run --example outgrow -- 50
//! ```

use dbmux::{params, Manager, Value};

const CUSTOMERS: i64 = 7;

fn email(number: i64) -> String {
    format!("customer{}@example.com", number % CUSTOMERS)
}

fn total_cents(number: i64) -> i64 {
    number * 125 % 10_000 + 99
}

fn receipt(number: i64) -> Vec<u8> {
    number.to_be_bytes().to_vec()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let more: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    let db = Manager::from_env()?;
    let migrations = dbmux::embed_migrations!("examples/outgrow/migrations")?;
    let report = db.migrate(&migrations)?;
    println!(
        "{}: {} migration(s) applied now, {} before",
        report.database,
        report.applied.len(),
        report.already_applied
    );

    // every order written so far reads back whole
    let rows = db.query(
        "SELECT o.number, c.email, o.total_cents, o.paid, o.receipt, o.note \
         FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.number",
        params![],
    )?;
    for (i, r) in rows.iter().enumerate() {
        let number: i64 = r.get(0)?;
        let ok = number == i as i64 + 1
            && r.get::<String>(1)? == email(number)
            && r.get::<i64>(2)? == total_cents(number)
            && r.get::<bool>(3)? == (number % 2 == 0)
            && r.get::<Vec<u8>>(4)? == receipt(number)
            && r.get::<String>(5)? == format!("order {number}");
        if !ok {
            return Err(format!("order {number} did not read back as written: {r:?}").into());
        }
    }
    println!("read back {} orders, all intact", rows.len());

    // and the app goes on writing
    let start = rows.len() as i64;
    db.transaction(|tx| -> dbmux::Result<()> {
        for c in 0..CUSTOMERS {
            tx.execute(
                "INSERT INTO customers (email) VALUES (?) ON CONFLICT (email) DO NOTHING",
                params![email(c)],
            )?;
        }
        for number in start + 1..=start + more {
            tx.execute(
                "INSERT INTO orders (number, customer_id, total_cents, paid, receipt, note) \
                 VALUES (?, (SELECT id FROM customers WHERE email = ?), ?, ?, ?, ?)",
                &[
                    Value::Integer(number),
                    Value::Text(email(number)),
                    Value::Integer(total_cents(number)),
                    Value::Integer(i64::from(number % 2 == 0)),
                    Value::Blob(receipt(number)),
                    Value::Text(format!("order {number}")),
                ],
            )?;
        }
        Ok(())
    })?;
    let total: i64 = db.query_scalar("SELECT count(*) FROM orders", params![])?;
    println!("wrote {more} orders; {total} in total");
    db.shutdown();
    Ok(())
}
