WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO sessions SELECT i, 'c' || i, 4 + (i % 2), 100, 0, NULL, NULL FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO messages SELECT i, 't/' || i, zeroblob(8), 1, 0, NULL, NULL, NULL, NULL, NULL, NULL FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO deliveries SELECT 1 + i % 7, i, 1 + (i % 3 = 2), 0, 1 + i % 65535, i % 3, NULL FROM n;
INSERT INTO subscriptions SELECT id, 't/#', 1, 0, 0, 0, 0 FROM sessions;
