DROP TABLE sessions;
CREATE TABLE sessions(id INTEGER PRIMARY KEY, client_id TEXT, protocol, expiry, disconnected_at, will_message, will_at);
INSERT INTO sessions VALUES(3, NULL, 4, 100, 0, NULL, NULL);
