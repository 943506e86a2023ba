INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);
INSERT INTO messages VALUES(1, 't', 'p', 1, 0, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO messages VALUES(2, 't', 'p', 1, 0, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO deliveries VALUES(1, 1, 1, 0, 7, 1, NULL);
INSERT INTO deliveries VALUES(1, 2, 1, 0, 7, 1, NULL);
