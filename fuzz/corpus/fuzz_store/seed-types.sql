PRAGMA foreign_keys = OFF;
INSERT INTO messages VALUES('one', 123, 'text payload', '1', 'yes', 'soon', 'x', x'00', 42, 'cd', 'up');
INSERT INTO sessions VALUES(5, x'00ff', '4', 'never', 'now', 'one', 'later');
INSERT INTO subscriptions VALUES(5, x'612f00', 'one', 'x', 'y', 'z', 'w');
INSERT INTO deliveries VALUES(5, 'one', 1, 0, 'pid', 'sent', 'ids');
INSERT INTO deliveries VALUES('5', 1, 1, 0, 1, 0, NULL);
