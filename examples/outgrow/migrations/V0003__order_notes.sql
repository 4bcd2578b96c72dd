-- The same SQL on both backends: no variants needed.
ALTER TABLE orders ADD COLUMN note TEXT;
