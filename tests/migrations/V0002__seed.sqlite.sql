INSERT INTO notes (id, body) VALUES (1, 'from the sqlite variant');
