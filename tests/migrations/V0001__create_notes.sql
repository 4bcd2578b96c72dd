-- The fixture of embed_migrations! (tests/migrate.rs).
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
