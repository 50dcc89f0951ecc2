//! Storage of the identity data in Keystone's SQL schema over SQLite, PostgreSQL and MariaDB/MySQL.
