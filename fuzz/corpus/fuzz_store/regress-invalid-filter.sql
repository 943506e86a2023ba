INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);
INSERT INTO subscriptions VALUES(1, 'a/#/b', 0, 0, 0, 0, 0);
