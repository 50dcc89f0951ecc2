//! Wire types of the Keystone v3 API shared by the identity server, the middleware and the client.
