DROP TABLE sessions;
CREATE TABLE sessions(id INTEGER PRIMARY KEY, client_id TEXT, protocol, expiry, disconnected_at, will_message, will_at);
INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);
INSERT INTO sessions VALUES(2, 'c', 5, 100, 0, NULL, NULL);
