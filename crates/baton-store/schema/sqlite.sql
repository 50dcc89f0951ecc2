-- Keystone's SQL schema at alembic heads 742c857f1dfb (expand) / c88cdce8f248 (contract), SQLite dialect.
-- Applied by `baton manage db_sync` on an empty database; table and column names, types and
-- constraints are Keystone's so that Keystone and Baton can serve the same database.

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

CREATE TABLE application_credential (
	internal_id INTEGER NOT NULL,
	id VARCHAR(64) NOT NULL,
	name VARCHAR(255) NOT NULL,
	secret_hash VARCHAR(255) NOT NULL,
	description TEXT,
	user_id VARCHAR(64) NOT NULL,
	project_id VARCHAR(64),
	expires_at BIGINT,
	system VARCHAR(64),
	unrestricted BOOLEAN,
	PRIMARY KEY (internal_id),
	CONSTRAINT duplicate_app_cred_constraint UNIQUE (user_id, name)
);

CREATE TABLE config_register (
	type VARCHAR(64) NOT NULL,
	domain_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (type)
);

CREATE TABLE consumer (
	id VARCHAR(64) NOT NULL,
	description VARCHAR(64),
	secret VARCHAR(64) NOT NULL,
	extra TEXT NOT NULL,
	PRIMARY KEY (id)
);

CREATE TABLE credential (
	id VARCHAR(64) NOT NULL,
	user_id VARCHAR(64) NOT NULL,
	project_id VARCHAR(64),
	type VARCHAR(255) NOT NULL,
	extra TEXT,
	key_hash VARCHAR(64) NOT NULL,
	encrypted_blob TEXT NOT NULL,
	PRIMARY KEY (id)
);

CREATE TABLE "group" (
	id VARCHAR(64) NOT NULL,
	domain_id VARCHAR(64) NOT NULL,
	name VARCHAR(64) NOT NULL,
	description TEXT,
	extra TEXT,
	PRIMARY KEY (id),
	CONSTRAINT ixu_group_name_domain_id UNIQUE (domain_id, name)
);

CREATE TABLE id_mapping (
	public_id VARCHAR(64) NOT NULL,
	domain_id VARCHAR(64) NOT NULL,
	local_id VARCHAR(255) NOT NULL,
	entity_type VARCHAR(5) NOT NULL,
	PRIMARY KEY (public_id),
	CONSTRAINT domain_id UNIQUE (domain_id, local_id, entity_type)
);

CREATE TABLE identity_provider (
	id VARCHAR(64) NOT NULL,
	enabled BOOLEAN NOT NULL,
	description TEXT,
	domain_id VARCHAR(64) NOT NULL,
	authorization_ttl INTEGER,
	PRIMARY KEY (id)
);

CREATE TABLE idp_remote_ids (
	idp_id VARCHAR(64),
	remote_id VARCHAR(255) NOT NULL,
	PRIMARY KEY (remote_id),
	FOREIGN KEY(idp_id) REFERENCES identity_provider (id) ON DELETE CASCADE
);

CREATE TABLE mapping (
	id VARCHAR(64) NOT NULL,
	rules TEXT NOT NULL, schema_version VARCHAR(5) DEFAULT '1.0' NOT NULL,
	PRIMARY KEY (id)
);

CREATE TABLE policy (
	id VARCHAR(64) NOT NULL,
	type VARCHAR(255) NOT NULL,
	blob TEXT NOT NULL,
	extra TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE policy_association (
	id VARCHAR(64) NOT NULL,
	policy_id VARCHAR(64) NOT NULL,
	endpoint_id VARCHAR(64),
	service_id VARCHAR(64),
	region_id VARCHAR(64),
	PRIMARY KEY (id),
	UNIQUE (endpoint_id, service_id, region_id)
);

CREATE TABLE project (
	id VARCHAR(64) NOT NULL,
	name VARCHAR(64) NOT NULL,
	extra TEXT,
	description TEXT,
	enabled BOOLEAN,
	domain_id VARCHAR(64) NOT NULL,
	parent_id VARCHAR(64),
	is_domain BOOLEAN DEFAULT '0' NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT ixu_project_name_domain_id UNIQUE (domain_id, name),
	CONSTRAINT project_domain_id_fkey FOREIGN KEY(domain_id) REFERENCES project (id),
	CONSTRAINT project_parent_id_fkey FOREIGN KEY(parent_id) REFERENCES project (id)
);

CREATE TABLE project_endpoint (
	endpoint_id VARCHAR(64) NOT NULL,
	project_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (endpoint_id, project_id)
);

CREATE TABLE project_option (
	project_id VARCHAR(64) NOT NULL,
	option_id VARCHAR(4) NOT NULL,
	option_value TEXT,
	PRIMARY KEY (project_id, option_id),
	FOREIGN KEY(project_id) REFERENCES project (id) ON DELETE CASCADE
);

CREATE TABLE project_tag (
	project_id VARCHAR(64) NOT NULL,
	name VARCHAR(255) NOT NULL,
	PRIMARY KEY (project_id, name),
	UNIQUE (project_id, name),
	FOREIGN KEY(project_id) REFERENCES project (id) ON DELETE CASCADE
);

CREATE TABLE region (
	id VARCHAR(255) NOT NULL,
	description VARCHAR(255) NOT NULL,
	parent_region_id VARCHAR(255),
	extra TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE registered_limit (
	id VARCHAR(64) NOT NULL,
	service_id VARCHAR(255),
	region_id VARCHAR(64),
	resource_name VARCHAR(255),
	default_limit INTEGER NOT NULL,
	description TEXT,
	internal_id INTEGER NOT NULL,
	PRIMARY KEY (internal_id),
	CONSTRAINT registered_limit_id_key UNIQUE (id)
);

CREATE TABLE request_token (
	id VARCHAR(64) NOT NULL,
	request_secret VARCHAR(64) NOT NULL,
	verifier VARCHAR(64),
	authorizing_user_id VARCHAR(64),
	requested_project_id VARCHAR(64) NOT NULL,
	role_ids TEXT,
	consumer_id VARCHAR(64) NOT NULL,
	expires_at VARCHAR(64),
	PRIMARY KEY (id),
	FOREIGN KEY(consumer_id) REFERENCES consumer (id)
);

CREATE INDEX ix_request_token_consumer_id ON request_token (consumer_id);

CREATE TABLE revocation_event (
	id INTEGER NOT NULL,
	domain_id VARCHAR(64),
	project_id VARCHAR(64),
	user_id VARCHAR(64),
	role_id VARCHAR(64),
	trust_id VARCHAR(64),
	consumer_id VARCHAR(64),
	access_token_id VARCHAR(64),
	issued_before DATETIME NOT NULL,
	expires_at DATETIME,
	revoked_at DATETIME NOT NULL,
	audit_id VARCHAR(32),
	audit_chain_id VARCHAR(32),
	PRIMARY KEY (id)
);

CREATE INDEX ix_revocation_event_project_id_issued_before ON revocation_event (project_id, issued_before);

CREATE INDEX ix_revocation_event_user_id_issued_before ON revocation_event (user_id, issued_before);

CREATE INDEX ix_revocation_event_new_revoked_at ON revocation_event (revoked_at);

CREATE INDEX ix_revocation_event_issued_before ON revocation_event (issued_before);

CREATE INDEX ix_revocation_event_audit_id_issued_before ON revocation_event (audit_id, issued_before);

CREATE TABLE role (
	id VARCHAR(64) NOT NULL,
	name VARCHAR(255) NOT NULL,
	extra TEXT,
	domain_id VARCHAR(64) DEFAULT '<<null>>' NOT NULL,
	description VARCHAR(255),
	PRIMARY KEY (id),
	CONSTRAINT ixu_role_name_domain_id UNIQUE (name, domain_id)
);

CREATE TABLE role_option (
	role_id VARCHAR(64) NOT NULL,
	option_id VARCHAR(4) NOT NULL,
	option_value TEXT,
	PRIMARY KEY (role_id, option_id),
	FOREIGN KEY(role_id) REFERENCES role (id) ON DELETE CASCADE
);

CREATE TABLE sensitive_config (
	domain_id VARCHAR(64) NOT NULL,
	"group" VARCHAR(255) NOT NULL,
	option VARCHAR(255) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (domain_id, "group", option)
);

CREATE TABLE service (
	id VARCHAR(64) NOT NULL,
	type VARCHAR(255),
	enabled BOOLEAN DEFAULT '1' NOT NULL,
	extra TEXT,
	PRIMARY KEY (id)
);

CREATE TABLE system_assignment (
	type VARCHAR(64) NOT NULL,
	actor_id VARCHAR(64) NOT NULL,
	target_id VARCHAR(64) NOT NULL,
	role_id VARCHAR(64) NOT NULL,
	inherited BOOLEAN NOT NULL,
	PRIMARY KEY (type, actor_id, target_id, role_id, inherited)
);

CREATE TABLE token (
	id VARCHAR(64) NOT NULL,
	expires DATETIME,
	extra TEXT,
	valid BOOLEAN NOT NULL,
	trust_id VARCHAR(64),
	user_id VARCHAR(64),
	PRIMARY KEY (id)
);

CREATE INDEX ix_token_expires ON token (expires);

CREATE INDEX ix_token_user_id ON token (user_id);

CREATE INDEX ix_token_expires_valid ON token (expires, valid);

CREATE INDEX ix_token_trust_id ON token (trust_id);

CREATE TABLE trust_role (
	trust_id VARCHAR(64) NOT NULL,
	role_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (trust_id, role_id)
);

CREATE TABLE user (
	id VARCHAR(64) NOT NULL,
	extra TEXT,
	enabled BOOLEAN,
	default_project_id VARCHAR(64),
	created_at DATETIME,
	last_active_at DATE,
	domain_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT ixu_user_id_domain_id UNIQUE (id, domain_id)
);

CREATE INDEX ix_default_project_id ON user (default_project_id);

CREATE TABLE user_group_membership (
	user_id VARCHAR(64) NOT NULL,
	group_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (user_id, group_id),
	CONSTRAINT fk_user_group_membership_user_id FOREIGN KEY(user_id) REFERENCES user (id),
	CONSTRAINT fk_user_group_membership_group_id FOREIGN KEY(group_id) REFERENCES "group" (id)
);

CREATE INDEX group_id ON user_group_membership (group_id);

CREATE TABLE user_option (
	user_id VARCHAR(64) NOT NULL,
	option_id VARCHAR(4) NOT NULL,
	option_value TEXT,
	PRIMARY KEY (user_id, option_id),
	FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE CASCADE
);

CREATE TABLE whitelisted_config (
	domain_id VARCHAR(64) NOT NULL,
	"group" VARCHAR(255) NOT NULL,
	option VARCHAR(255) NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (domain_id, "group", option)
);

CREATE TABLE access_token (
	id VARCHAR(64) NOT NULL,
	access_secret VARCHAR(64) NOT NULL,
	authorizing_user_id VARCHAR(64) NOT NULL,
	project_id VARCHAR(64) NOT NULL,
	role_ids TEXT NOT NULL,
	consumer_id VARCHAR(64) NOT NULL,
	expires_at VARCHAR(64),
	PRIMARY KEY (id),
	FOREIGN KEY(consumer_id) REFERENCES consumer (id)
);

CREATE INDEX ix_access_token_authorizing_user_id ON access_token (authorizing_user_id);

CREATE INDEX ix_access_token_consumer_id ON access_token (consumer_id);

CREATE TABLE application_credential_role (
	application_credential_id INTEGER NOT NULL,
	role_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (application_credential_id, role_id),
	FOREIGN KEY(application_credential_id) REFERENCES application_credential (internal_id) ON DELETE CASCADE
);

CREATE TABLE application_credential_access_rule (
	application_credential_id INTEGER NOT NULL,
	access_rule_id INTEGER NOT NULL,
	PRIMARY KEY (application_credential_id, access_rule_id),
	FOREIGN KEY(application_credential_id) REFERENCES application_credential (internal_id) ON DELETE CASCADE,
	FOREIGN KEY(access_rule_id) REFERENCES access_rule (id) ON DELETE CASCADE
);

CREATE TABLE endpoint (
	id VARCHAR(64) NOT NULL,
	legacy_endpoint_id VARCHAR(64),
	interface VARCHAR(8) NOT NULL,
	service_id VARCHAR(64) NOT NULL,
	url TEXT NOT NULL,
	extra TEXT,
	enabled BOOLEAN DEFAULT '1' NOT NULL,
	region_id VARCHAR(255),
	PRIMARY KEY (id),
	CONSTRAINT endpoint_service_id_fkey FOREIGN KEY(service_id) REFERENCES service (id),
	CONSTRAINT fk_endpoint_region_id FOREIGN KEY(region_id) REFERENCES region (id)
);

CREATE INDEX service_id ON endpoint (service_id);

CREATE TABLE endpoint_group (
	id VARCHAR(64) NOT NULL,
	name VARCHAR(255) NOT NULL,
	description TEXT,
	filters TEXT NOT NULL,
	PRIMARY KEY (id)
);

CREATE TABLE expiring_user_group_membership (
	user_id VARCHAR(64) NOT NULL,
	group_id VARCHAR(64) NOT NULL,
	idp_id VARCHAR(64) NOT NULL,
	last_verified DATETIME NOT NULL,
	PRIMARY KEY (user_id, group_id, idp_id),
	FOREIGN KEY(user_id) REFERENCES user (id),
	FOREIGN KEY(group_id) REFERENCES "group" (id),
	FOREIGN KEY(idp_id) REFERENCES identity_provider (id) ON DELETE CASCADE
);

CREATE TABLE federation_protocol (
	id VARCHAR(64) NOT NULL,
	idp_id VARCHAR(64) NOT NULL,
	mapping_id VARCHAR(64) NOT NULL,
	remote_id_attribute VARCHAR(64),
	PRIMARY KEY (id, idp_id),
	FOREIGN KEY(idp_id) REFERENCES identity_provider (id) ON DELETE CASCADE
);

CREATE TABLE implied_role (
	prior_role_id VARCHAR(64) NOT NULL,
	implied_role_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (prior_role_id, implied_role_id),
	CONSTRAINT implied_role_prior_role_id_fkey FOREIGN KEY(prior_role_id) REFERENCES role (id) ON DELETE CASCADE,
	CONSTRAINT implied_role_implied_role_id_fkey FOREIGN KEY(implied_role_id) REFERENCES role (id) ON DELETE CASCADE
);

CREATE TABLE "limit" (
	id VARCHAR(64) NOT NULL,
	project_id VARCHAR(64),
	resource_limit INTEGER NOT NULL,
	description TEXT,
	internal_id INTEGER NOT NULL,
	registered_limit_id VARCHAR(64),
	domain_id VARCHAR(64),
	PRIMARY KEY (internal_id),
	CONSTRAINT limit_id_key UNIQUE (id)
);

CREATE TABLE local_user (
	id INTEGER NOT NULL,
	user_id VARCHAR(64) NOT NULL,
	domain_id VARCHAR(64) NOT NULL,
	name VARCHAR(255) NOT NULL,
	failed_auth_count INTEGER,
	failed_auth_at DATETIME,
	PRIMARY KEY (id),
	CONSTRAINT local_user_user_id_fkey FOREIGN KEY(user_id, domain_id) REFERENCES user (id, domain_id) ON DELETE CASCADE ON UPDATE CASCADE,
	UNIQUE (domain_id, name),
	UNIQUE (user_id)
);

CREATE TABLE nonlocal_user (
	domain_id VARCHAR(64) NOT NULL,
	name VARCHAR(255) NOT NULL,
	user_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (domain_id, name),
	CONSTRAINT nonlocal_user_user_id_fkey FOREIGN KEY(user_id, domain_id) REFERENCES user (id, domain_id) ON DELETE CASCADE ON UPDATE CASCADE,
	CONSTRAINT ixu_nonlocal_user_user_id UNIQUE (user_id)
);

CREATE TABLE password (
	id INTEGER NOT NULL,
	local_user_id INTEGER NOT NULL,
	expires_at DATETIME,
	self_service BOOLEAN DEFAULT '0' NOT NULL,
	password_hash VARCHAR(255),
	created_at_int BIGINT DEFAULT '0' NOT NULL,
	expires_at_int BIGINT,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(local_user_id) REFERENCES local_user (id) ON DELETE CASCADE
);

CREATE TABLE project_endpoint_group (
	endpoint_group_id VARCHAR(64) NOT NULL,
	project_id VARCHAR(64) NOT NULL,
	PRIMARY KEY (endpoint_group_id, project_id),
	FOREIGN KEY(endpoint_group_id) REFERENCES endpoint_group (id)
);

CREATE TABLE federated_user (
	id INTEGER NOT NULL,
	user_id VARCHAR(64) NOT NULL,
	idp_id VARCHAR(64) NOT NULL,
	protocol_id VARCHAR(64) NOT NULL,
	unique_id VARCHAR(255) NOT NULL,
	display_name VARCHAR(255),
	PRIMARY KEY (id),
	CONSTRAINT federated_user_protocol_id_fkey FOREIGN KEY(protocol_id, idp_id) REFERENCES federation_protocol (id, idp_id) ON DELETE CASCADE,
	UNIQUE (idp_id, protocol_id, unique_id),
	FOREIGN KEY(user_id) REFERENCES user (id) ON DELETE CASCADE,
	FOREIGN KEY(idp_id) REFERENCES identity_provider (id) ON DELETE CASCADE
);

CREATE TABLE "assignment" (
	type VARCHAR(12) NOT NULL,
	actor_id VARCHAR(64) NOT NULL,
	target_id VARCHAR(64) NOT NULL,
	role_id VARCHAR(64) NOT NULL,
	inherited BOOLEAN NOT NULL,
	PRIMARY KEY (type, actor_id, target_id, role_id, inherited),
	CONSTRAINT fk_assignment_role_id FOREIGN KEY(role_id) REFERENCES role (id)
);

CREATE INDEX ix_actor_id ON assignment (actor_id);

CREATE TABLE "service_provider" (
	auth_url VARCHAR(256) NOT NULL,
	id VARCHAR(64) NOT NULL,
	enabled BOOLEAN NOT NULL,
	description TEXT,
	sp_url VARCHAR(256) NOT NULL,
	relay_state_prefix VARCHAR(256) NOT NULL,
	PRIMARY KEY (id)
);

CREATE INDEX idx_project_id ON project_endpoint_group (project_id);

CREATE INDEX ix_revocation_event_project_id_user_id ON revocation_event (project_id, user_id);

CREATE INDEX ix_revocation_event_composite ON revocation_event (issued_before, user_id, project_id, audit_id);

CREATE TABLE "access_rule" (
	id INTEGER NOT NULL,
	service VARCHAR(64),
	path VARCHAR(128),
	method VARCHAR(16),
	external_id VARCHAR(64),
	user_id VARCHAR(64),
	PRIMARY KEY (id),
	CONSTRAINT duplicate_access_rule_for_user_constraint UNIQUE (user_id, service, path, method)
);

CREATE INDEX external_id ON access_rule (external_id);

CREATE INDEX user_id ON access_rule (user_id);

CREATE TABLE "trust" (
	id VARCHAR(64) NOT NULL,
	trustor_user_id VARCHAR(64) NOT NULL,
	trustee_user_id VARCHAR(64) NOT NULL,
	project_id VARCHAR(64),
	impersonation BOOLEAN NOT NULL,
	deleted_at DATETIME,
	expires_at DATETIME,
	remaining_uses INTEGER,
	extra TEXT,
	expires_at_int BIGINT,
	redelegated_trust_id VARCHAR(64),
	redelegation_count INTEGER,
	PRIMARY KEY (id),
	CONSTRAINT duplicate_trust_constraint UNIQUE (trustor_user_id, trustee_user_id, project_id, impersonation, expires_at)
);
