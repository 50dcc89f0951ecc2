-- Keystone's SQL schema at alembic heads 742c857f1dfb / c88cdce8f248, PostgreSQL dialect (see sqlite.sql).

CREATE TYPE entity_type AS ENUM (
    'user',
    'group'
);

CREATE TYPE type AS ENUM (
    'UserProject',
    'GroupProject',
    'UserDomain',
    'GroupDomain'
);

CREATE TABLE access_rule (
    id integer NOT NULL,
    service character varying(64),
    path character varying(128),
    method character varying(16),
    external_id character varying(64),
    user_id character varying(64)
);

CREATE SEQUENCE access_rule_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE access_rule_id_seq OWNED BY access_rule.id;

CREATE TABLE access_token (
    id character varying(64) NOT NULL,
    access_secret character varying(64) NOT NULL,
    authorizing_user_id character varying(64) NOT NULL,
    project_id character varying(64) NOT NULL,
    role_ids text NOT NULL,
    consumer_id character varying(64) NOT NULL,
    expires_at character varying(64)
);

CREATE TABLE alembic_version (
    version_num character varying(32) NOT NULL
);

CREATE TABLE application_credential (
    internal_id integer NOT NULL,
    id character varying(64) NOT NULL,
    name character varying(255) NOT NULL,
    secret_hash character varying(255) NOT NULL,
    description text,
    user_id character varying(64) NOT NULL,
    project_id character varying(64),
    expires_at bigint,
    system character varying(64),
    unrestricted boolean
);

CREATE TABLE application_credential_access_rule (
    application_credential_id integer NOT NULL,
    access_rule_id integer NOT NULL
);

CREATE SEQUENCE application_credential_internal_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE application_credential_internal_id_seq OWNED BY application_credential.internal_id;

CREATE TABLE application_credential_role (
    application_credential_id integer NOT NULL,
    role_id character varying(64) NOT NULL
);

CREATE TABLE assignment (
    type type NOT NULL,
    actor_id character varying(64) NOT NULL,
    target_id character varying(64) NOT NULL,
    role_id character varying(64) NOT NULL,
    inherited boolean NOT NULL
);

CREATE TABLE config_register (
    type character varying(64) NOT NULL,
    domain_id character varying(64) NOT NULL
);

CREATE TABLE consumer (
    id character varying(64) NOT NULL,
    description character varying(64),
    secret character varying(64) NOT NULL,
    extra text NOT NULL
);

CREATE TABLE credential (
    id character varying(64) NOT NULL,
    user_id character varying(64) NOT NULL,
    project_id character varying(64),
    type character varying(255) NOT NULL,
    extra text,
    key_hash character varying(64) NOT NULL,
    encrypted_blob text NOT NULL
);

CREATE TABLE endpoint (
    id character varying(64) NOT NULL,
    legacy_endpoint_id character varying(64),
    interface character varying(8) NOT NULL,
    service_id character varying(64) NOT NULL,
    url text NOT NULL,
    extra text,
    enabled boolean DEFAULT true NOT NULL,
    region_id character varying(255)
);

CREATE TABLE endpoint_group (
    id character varying(64) NOT NULL,
    name character varying(255) NOT NULL,
    description text,
    filters text NOT NULL
);

CREATE TABLE expiring_user_group_membership (
    user_id character varying(64) NOT NULL,
    group_id character varying(64) NOT NULL,
    idp_id character varying(64) NOT NULL,
    last_verified timestamp without time zone NOT NULL
);

CREATE TABLE federated_user (
    id integer NOT NULL,
    user_id character varying(64) NOT NULL,
    idp_id character varying(64) NOT NULL,
    protocol_id character varying(64) NOT NULL,
    unique_id character varying(255) NOT NULL,
    display_name character varying(255)
);

CREATE SEQUENCE federated_user_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE federated_user_id_seq OWNED BY federated_user.id;

CREATE TABLE federation_protocol (
    id character varying(64) NOT NULL,
    idp_id character varying(64) NOT NULL,
    mapping_id character varying(64) NOT NULL,
    remote_id_attribute character varying(64)
);

CREATE TABLE "group" (
    id character varying(64) NOT NULL,
    domain_id character varying(64) NOT NULL,
    name character varying(64) NOT NULL,
    description text,
    extra text
);

CREATE TABLE id_mapping (
    public_id character varying(64) NOT NULL,
    domain_id character varying(64) NOT NULL,
    local_id character varying(255) NOT NULL,
    entity_type entity_type NOT NULL
);

CREATE TABLE identity_provider (
    id character varying(64) NOT NULL,
    enabled boolean NOT NULL,
    description text,
    domain_id character varying(64) NOT NULL,
    authorization_ttl integer
);

CREATE TABLE idp_remote_ids (
    idp_id character varying(64),
    remote_id character varying(255) NOT NULL
);

CREATE TABLE implied_role (
    prior_role_id character varying(64) NOT NULL,
    implied_role_id character varying(64) NOT NULL
);

CREATE TABLE "limit" (
    id character varying(64) NOT NULL,
    project_id character varying(64),
    resource_limit integer NOT NULL,
    description text,
    internal_id integer NOT NULL,
    registered_limit_id character varying(64),
    domain_id character varying(64)
);

CREATE SEQUENCE limit_internal_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE limit_internal_id_seq OWNED BY "limit".internal_id;

CREATE TABLE local_user (
    id integer NOT NULL,
    user_id character varying(64) NOT NULL,
    domain_id character varying(64) NOT NULL,
    name character varying(255) NOT NULL,
    failed_auth_count integer,
    failed_auth_at timestamp without time zone
);

CREATE SEQUENCE local_user_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE local_user_id_seq OWNED BY local_user.id;

CREATE TABLE mapping (
    id character varying(64) NOT NULL,
    rules text NOT NULL,
    schema_version character varying(5) DEFAULT '1.0'::character varying NOT NULL
);

CREATE TABLE nonlocal_user (
    domain_id character varying(64) NOT NULL,
    name character varying(255) NOT NULL,
    user_id character varying(64) NOT NULL
);

CREATE TABLE password (
    id integer NOT NULL,
    local_user_id integer NOT NULL,
    expires_at timestamp without time zone,
    self_service boolean DEFAULT false NOT NULL,
    password_hash character varying(255),
    created_at_int bigint DEFAULT '0'::bigint NOT NULL,
    expires_at_int bigint,
    created_at timestamp without time zone NOT NULL
);

CREATE SEQUENCE password_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE password_id_seq OWNED BY password.id;

CREATE TABLE policy (
    id character varying(64) NOT NULL,
    type character varying(255) NOT NULL,
    blob text NOT NULL,
    extra text
);

CREATE TABLE policy_association (
    id character varying(64) NOT NULL,
    policy_id character varying(64) NOT NULL,
    endpoint_id character varying(64),
    service_id character varying(64),
    region_id character varying(64)
);

CREATE TABLE project (
    id character varying(64) NOT NULL,
    name character varying(64) NOT NULL,
    extra text,
    description text,
    enabled boolean,
    domain_id character varying(64) NOT NULL,
    parent_id character varying(64),
    is_domain boolean DEFAULT false NOT NULL
);

CREATE TABLE project_endpoint (
    endpoint_id character varying(64) NOT NULL,
    project_id character varying(64) NOT NULL
);

CREATE TABLE project_endpoint_group (
    endpoint_group_id character varying(64) NOT NULL,
    project_id character varying(64) NOT NULL
);

CREATE TABLE project_option (
    project_id character varying(64) NOT NULL,
    option_id character varying(4) NOT NULL,
    option_value text
);

CREATE TABLE project_tag (
    project_id character varying(64) NOT NULL,
    name character varying(255) NOT NULL
);

CREATE TABLE region (
    id character varying(255) NOT NULL,
    description character varying(255) NOT NULL,
    parent_region_id character varying(255),
    extra text
);

CREATE TABLE registered_limit (
    id character varying(64) NOT NULL,
    service_id character varying(255),
    region_id character varying(64),
    resource_name character varying(255),
    default_limit integer NOT NULL,
    description text,
    internal_id integer NOT NULL
);

CREATE SEQUENCE registered_limit_internal_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE registered_limit_internal_id_seq OWNED BY registered_limit.internal_id;

CREATE TABLE request_token (
    id character varying(64) NOT NULL,
    request_secret character varying(64) NOT NULL,
    verifier character varying(64),
    authorizing_user_id character varying(64),
    requested_project_id character varying(64) NOT NULL,
    role_ids text,
    consumer_id character varying(64) NOT NULL,
    expires_at character varying(64)
);

CREATE TABLE revocation_event (
    id integer NOT NULL,
    domain_id character varying(64),
    project_id character varying(64),
    user_id character varying(64),
    role_id character varying(64),
    trust_id character varying(64),
    consumer_id character varying(64),
    access_token_id character varying(64),
    issued_before timestamp without time zone NOT NULL,
    expires_at timestamp without time zone,
    revoked_at timestamp without time zone NOT NULL,
    audit_id character varying(32),
    audit_chain_id character varying(32)
);

CREATE SEQUENCE revocation_event_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE revocation_event_id_seq OWNED BY revocation_event.id;

CREATE TABLE role (
    id character varying(64) NOT NULL,
    name character varying(255) NOT NULL,
    extra text,
    domain_id character varying(64) DEFAULT '<<null>>'::character varying NOT NULL,
    description character varying(255)
);

CREATE TABLE role_option (
    role_id character varying(64) NOT NULL,
    option_id character varying(4) NOT NULL,
    option_value text
);

CREATE TABLE sensitive_config (
    domain_id character varying(64) NOT NULL,
    "group" character varying(255) NOT NULL,
    option character varying(255) NOT NULL,
    value text NOT NULL
);

CREATE TABLE service (
    id character varying(64) NOT NULL,
    type character varying(255),
    enabled boolean DEFAULT true NOT NULL,
    extra text
);

CREATE TABLE service_provider (
    auth_url character varying(256) NOT NULL,
    id character varying(64) NOT NULL,
    enabled boolean NOT NULL,
    description text,
    sp_url character varying(256) NOT NULL,
    relay_state_prefix character varying(256) NOT NULL
);

CREATE TABLE system_assignment (
    type character varying(64) NOT NULL,
    actor_id character varying(64) NOT NULL,
    target_id character varying(64) NOT NULL,
    role_id character varying(64) NOT NULL,
    inherited boolean NOT NULL
);

CREATE TABLE token (
    id character varying(64) NOT NULL,
    expires timestamp without time zone,
    extra text,
    valid boolean NOT NULL,
    trust_id character varying(64),
    user_id character varying(64)
);

CREATE TABLE trust (
    id character varying(64) NOT NULL,
    trustor_user_id character varying(64) NOT NULL,
    trustee_user_id character varying(64) NOT NULL,
    project_id character varying(64),
    impersonation boolean NOT NULL,
    deleted_at timestamp without time zone,
    expires_at timestamp without time zone,
    remaining_uses integer,
    extra text,
    expires_at_int bigint,
    redelegated_trust_id character varying(64),
    redelegation_count integer
);

CREATE TABLE trust_role (
    trust_id character varying(64) NOT NULL,
    role_id character varying(64) NOT NULL
);

CREATE TABLE "user" (
    id character varying(64) NOT NULL,
    extra text,
    enabled boolean,
    default_project_id character varying(64),
    created_at timestamp without time zone,
    last_active_at date,
    domain_id character varying(64) NOT NULL
);

CREATE TABLE user_group_membership (
    user_id character varying(64) NOT NULL,
    group_id character varying(64) NOT NULL
);

CREATE TABLE user_option (
    user_id character varying(64) NOT NULL,
    option_id character varying(4) NOT NULL,
    option_value text
);

CREATE TABLE whitelisted_config (
    domain_id character varying(64) NOT NULL,
    "group" character varying(255) NOT NULL,
    option character varying(255) NOT NULL,
    value text NOT NULL
);

ALTER TABLE ONLY access_rule ALTER COLUMN id SET DEFAULT nextval('access_rule_id_seq'::regclass);

ALTER TABLE ONLY application_credential ALTER COLUMN internal_id SET DEFAULT nextval('application_credential_internal_id_seq'::regclass);

ALTER TABLE ONLY federated_user ALTER COLUMN id SET DEFAULT nextval('federated_user_id_seq'::regclass);

ALTER TABLE ONLY "limit" ALTER COLUMN internal_id SET DEFAULT nextval('limit_internal_id_seq'::regclass);

ALTER TABLE ONLY local_user ALTER COLUMN id SET DEFAULT nextval('local_user_id_seq'::regclass);

ALTER TABLE ONLY password ALTER COLUMN id SET DEFAULT nextval('password_id_seq'::regclass);

ALTER TABLE ONLY registered_limit ALTER COLUMN internal_id SET DEFAULT nextval('registered_limit_internal_id_seq'::regclass);

ALTER TABLE ONLY revocation_event ALTER COLUMN id SET DEFAULT nextval('revocation_event_id_seq'::regclass);

ALTER TABLE ONLY access_rule
    ADD CONSTRAINT access_rule_pkey PRIMARY KEY (id);

ALTER TABLE ONLY access_token
    ADD CONSTRAINT access_token_pkey PRIMARY KEY (id);

ALTER TABLE ONLY alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);

ALTER TABLE ONLY application_credential_access_rule
    ADD CONSTRAINT application_credential_access_rule_pkey PRIMARY KEY (application_credential_id, access_rule_id);

ALTER TABLE ONLY application_credential
    ADD CONSTRAINT application_credential_pkey PRIMARY KEY (internal_id);

ALTER TABLE ONLY application_credential_role
    ADD CONSTRAINT application_credential_role_pkey PRIMARY KEY (application_credential_id, role_id);

ALTER TABLE ONLY assignment
    ADD CONSTRAINT assignment_pkey PRIMARY KEY (type, actor_id, target_id, role_id, inherited);

ALTER TABLE ONLY config_register
    ADD CONSTRAINT config_register_pkey PRIMARY KEY (type);

ALTER TABLE ONLY consumer
    ADD CONSTRAINT consumer_pkey PRIMARY KEY (id);

ALTER TABLE ONLY credential
    ADD CONSTRAINT credential_pkey PRIMARY KEY (id);

ALTER TABLE ONLY id_mapping
    ADD CONSTRAINT domain_id UNIQUE (domain_id, local_id, entity_type);

ALTER TABLE ONLY access_rule
    ADD CONSTRAINT duplicate_access_rule_for_user_constraint UNIQUE (user_id, service, path, method);

ALTER TABLE ONLY application_credential
    ADD CONSTRAINT duplicate_app_cred_constraint UNIQUE (user_id, name);

ALTER TABLE ONLY trust
    ADD CONSTRAINT duplicate_trust_constraint UNIQUE (trustor_user_id, trustee_user_id, project_id, impersonation, expires_at);

ALTER TABLE ONLY endpoint_group
    ADD CONSTRAINT endpoint_group_pkey PRIMARY KEY (id);

ALTER TABLE ONLY endpoint
    ADD CONSTRAINT endpoint_pkey PRIMARY KEY (id);

ALTER TABLE ONLY expiring_user_group_membership
    ADD CONSTRAINT expiring_user_group_membership_pkey PRIMARY KEY (user_id, group_id, idp_id);

ALTER TABLE ONLY federated_user
    ADD CONSTRAINT federated_user_idp_id_protocol_id_unique_id_key UNIQUE (idp_id, protocol_id, unique_id);

ALTER TABLE ONLY federated_user
    ADD CONSTRAINT federated_user_pkey PRIMARY KEY (id);

ALTER TABLE ONLY federation_protocol
    ADD CONSTRAINT federation_protocol_pkey PRIMARY KEY (id, idp_id);

ALTER TABLE ONLY "group"
    ADD CONSTRAINT group_pkey PRIMARY KEY (id);

ALTER TABLE ONLY id_mapping
    ADD CONSTRAINT id_mapping_pkey PRIMARY KEY (public_id);

ALTER TABLE ONLY identity_provider
    ADD CONSTRAINT identity_provider_pkey PRIMARY KEY (id);

ALTER TABLE ONLY idp_remote_ids
    ADD CONSTRAINT idp_remote_ids_pkey PRIMARY KEY (remote_id);

ALTER TABLE ONLY implied_role
    ADD CONSTRAINT implied_role_pkey PRIMARY KEY (prior_role_id, implied_role_id);

ALTER TABLE ONLY "group"
    ADD CONSTRAINT ixu_group_name_domain_id UNIQUE (domain_id, name);

ALTER TABLE ONLY nonlocal_user
    ADD CONSTRAINT ixu_nonlocal_user_user_id UNIQUE (user_id);

ALTER TABLE ONLY project
    ADD CONSTRAINT ixu_project_name_domain_id UNIQUE (domain_id, name);

ALTER TABLE ONLY role
    ADD CONSTRAINT ixu_role_name_domain_id UNIQUE (name, domain_id);

ALTER TABLE ONLY "user"
    ADD CONSTRAINT ixu_user_id_domain_id UNIQUE (id, domain_id);

ALTER TABLE ONLY "limit"
    ADD CONSTRAINT limit_id_key UNIQUE (id);

ALTER TABLE ONLY "limit"
    ADD CONSTRAINT limit_pkey PRIMARY KEY (internal_id);

ALTER TABLE ONLY local_user
    ADD CONSTRAINT local_user_domain_id_name_key UNIQUE (domain_id, name);

ALTER TABLE ONLY local_user
    ADD CONSTRAINT local_user_pkey PRIMARY KEY (id);

ALTER TABLE ONLY local_user
    ADD CONSTRAINT local_user_user_id_key UNIQUE (user_id);

ALTER TABLE ONLY mapping
    ADD CONSTRAINT mapping_pkey PRIMARY KEY (id);

ALTER TABLE ONLY nonlocal_user
    ADD CONSTRAINT nonlocal_user_pkey PRIMARY KEY (domain_id, name);

ALTER TABLE ONLY password
    ADD CONSTRAINT password_pkey PRIMARY KEY (id);

ALTER TABLE ONLY policy_association
    ADD CONSTRAINT policy_association_endpoint_id_service_id_region_id_key UNIQUE (endpoint_id, service_id, region_id);

ALTER TABLE ONLY policy_association
    ADD CONSTRAINT policy_association_pkey PRIMARY KEY (id);

ALTER TABLE ONLY policy
    ADD CONSTRAINT policy_pkey PRIMARY KEY (id);

ALTER TABLE ONLY project_endpoint_group
    ADD CONSTRAINT project_endpoint_group_pkey PRIMARY KEY (endpoint_group_id, project_id);

ALTER TABLE ONLY project_endpoint
    ADD CONSTRAINT project_endpoint_pkey PRIMARY KEY (endpoint_id, project_id);

ALTER TABLE ONLY project_option
    ADD CONSTRAINT project_option_pkey PRIMARY KEY (project_id, option_id);

ALTER TABLE ONLY project
    ADD CONSTRAINT project_pkey PRIMARY KEY (id);

ALTER TABLE ONLY project_tag
    ADD CONSTRAINT project_tag_pkey PRIMARY KEY (project_id, name);

ALTER TABLE ONLY region
    ADD CONSTRAINT region_pkey PRIMARY KEY (id);

ALTER TABLE ONLY registered_limit
    ADD CONSTRAINT registered_limit_id_key UNIQUE (id);

ALTER TABLE ONLY registered_limit
    ADD CONSTRAINT registered_limit_pkey PRIMARY KEY (internal_id);

ALTER TABLE ONLY request_token
    ADD CONSTRAINT request_token_pkey PRIMARY KEY (id);

ALTER TABLE ONLY revocation_event
    ADD CONSTRAINT revocation_event_pkey PRIMARY KEY (id);

ALTER TABLE ONLY role_option
    ADD CONSTRAINT role_option_pkey PRIMARY KEY (role_id, option_id);

ALTER TABLE ONLY role
    ADD CONSTRAINT role_pkey PRIMARY KEY (id);

ALTER TABLE ONLY sensitive_config
    ADD CONSTRAINT sensitive_config_pkey PRIMARY KEY (domain_id, "group", option);

ALTER TABLE ONLY service
    ADD CONSTRAINT service_pkey PRIMARY KEY (id);

ALTER TABLE ONLY service_provider
    ADD CONSTRAINT service_provider_pkey PRIMARY KEY (id);

ALTER TABLE ONLY system_assignment
    ADD CONSTRAINT system_assignment_pkey PRIMARY KEY (type, actor_id, target_id, role_id, inherited);

ALTER TABLE ONLY token
    ADD CONSTRAINT token_pkey PRIMARY KEY (id);

ALTER TABLE ONLY trust
    ADD CONSTRAINT trust_pkey PRIMARY KEY (id);

ALTER TABLE ONLY trust_role
    ADD CONSTRAINT trust_role_pkey PRIMARY KEY (trust_id, role_id);

ALTER TABLE ONLY user_group_membership
    ADD CONSTRAINT user_group_membership_pkey PRIMARY KEY (user_id, group_id);

ALTER TABLE ONLY user_option
    ADD CONSTRAINT user_option_pkey PRIMARY KEY (user_id, option_id);

ALTER TABLE ONLY "user"
    ADD CONSTRAINT user_pkey PRIMARY KEY (id);

ALTER TABLE ONLY whitelisted_config
    ADD CONSTRAINT whitelisted_config_pkey PRIMARY KEY (domain_id, "group", option);

CREATE INDEX external_id ON access_rule USING btree (external_id);

CREATE INDEX group_id ON user_group_membership USING btree (group_id);

CREATE INDEX idx_project_id ON project_endpoint_group USING btree (project_id);

CREATE INDEX ix_access_token_authorizing_user_id ON access_token USING btree (authorizing_user_id);

CREATE INDEX ix_access_token_consumer_id ON access_token USING btree (consumer_id);

CREATE INDEX ix_actor_id ON assignment USING btree (actor_id);

CREATE INDEX ix_default_project_id ON "user" USING btree (default_project_id);

CREATE INDEX ix_request_token_consumer_id ON request_token USING btree (consumer_id);

CREATE INDEX ix_revocation_event_audit_id_issued_before ON revocation_event USING btree (audit_id, issued_before);

CREATE INDEX ix_revocation_event_composite ON revocation_event USING btree (issued_before, user_id, project_id, audit_id);

CREATE INDEX ix_revocation_event_issued_before ON revocation_event USING btree (issued_before);

CREATE INDEX ix_revocation_event_new_revoked_at ON revocation_event USING btree (revoked_at);

CREATE INDEX ix_revocation_event_project_id_issued_before ON revocation_event USING btree (project_id, issued_before);

CREATE INDEX ix_revocation_event_project_id_user_id ON revocation_event USING btree (project_id, user_id);

CREATE INDEX ix_revocation_event_user_id_issued_before ON revocation_event USING btree (user_id, issued_before);

CREATE INDEX ix_token_expires ON token USING btree (expires);

CREATE INDEX ix_token_expires_valid ON token USING btree (expires, valid);

CREATE INDEX ix_token_trust_id ON token USING btree (trust_id);

CREATE INDEX ix_token_user_id ON token USING btree (user_id);

CREATE INDEX service_id ON endpoint USING btree (service_id);

CREATE INDEX user_id ON access_rule USING btree (user_id);

ALTER TABLE ONLY access_token
    ADD CONSTRAINT access_token_consumer_id_fkey FOREIGN KEY (consumer_id) REFERENCES consumer(id);

ALTER TABLE ONLY application_credential_access_rule
    ADD CONSTRAINT application_credential_access_ru_application_credential_id_fkey FOREIGN KEY (application_credential_id) REFERENCES application_credential(internal_id) ON DELETE CASCADE;

ALTER TABLE ONLY application_credential_access_rule
    ADD CONSTRAINT application_credential_access_rule_access_rule_id_fkey FOREIGN KEY (access_rule_id) REFERENCES access_rule(id) ON DELETE CASCADE;

ALTER TABLE ONLY application_credential_role
    ADD CONSTRAINT application_credential_role_application_credential_id_fkey FOREIGN KEY (application_credential_id) REFERENCES application_credential(internal_id) ON DELETE CASCADE;

ALTER TABLE ONLY endpoint
    ADD CONSTRAINT endpoint_service_id_fkey FOREIGN KEY (service_id) REFERENCES service(id);

ALTER TABLE ONLY expiring_user_group_membership
    ADD CONSTRAINT expiring_user_group_membership_group_id_fkey FOREIGN KEY (group_id) REFERENCES "group"(id);

ALTER TABLE ONLY expiring_user_group_membership
    ADD CONSTRAINT expiring_user_group_membership_idp_id_fkey FOREIGN KEY (idp_id) REFERENCES identity_provider(id) ON DELETE CASCADE;

ALTER TABLE ONLY expiring_user_group_membership
    ADD CONSTRAINT expiring_user_group_membership_user_id_fkey FOREIGN KEY (user_id) REFERENCES "user"(id);

ALTER TABLE ONLY federated_user
    ADD CONSTRAINT federated_user_idp_id_fkey FOREIGN KEY (idp_id) REFERENCES identity_provider(id) ON DELETE CASCADE;

ALTER TABLE ONLY federated_user
    ADD CONSTRAINT federated_user_protocol_id_fkey FOREIGN KEY (protocol_id, idp_id) REFERENCES federation_protocol(id, idp_id) ON DELETE CASCADE;

ALTER TABLE ONLY federated_user
    ADD CONSTRAINT federated_user_user_id_fkey FOREIGN KEY (user_id) REFERENCES "user"(id) ON DELETE CASCADE;

ALTER TABLE ONLY federation_protocol
    ADD CONSTRAINT federation_protocol_idp_id_fkey FOREIGN KEY (idp_id) REFERENCES identity_provider(id) ON DELETE CASCADE;

ALTER TABLE ONLY endpoint
    ADD CONSTRAINT fk_endpoint_region_id FOREIGN KEY (region_id) REFERENCES region(id);

ALTER TABLE ONLY user_group_membership
    ADD CONSTRAINT fk_user_group_membership_group_id FOREIGN KEY (group_id) REFERENCES "group"(id);

ALTER TABLE ONLY user_group_membership
    ADD CONSTRAINT fk_user_group_membership_user_id FOREIGN KEY (user_id) REFERENCES "user"(id);

ALTER TABLE ONLY idp_remote_ids
    ADD CONSTRAINT idp_remote_ids_idp_id_fkey FOREIGN KEY (idp_id) REFERENCES identity_provider(id) ON DELETE CASCADE;

ALTER TABLE ONLY implied_role
    ADD CONSTRAINT implied_role_implied_role_id_fkey FOREIGN KEY (implied_role_id) REFERENCES role(id) ON DELETE CASCADE;

ALTER TABLE ONLY implied_role
    ADD CONSTRAINT implied_role_prior_role_id_fkey FOREIGN KEY (prior_role_id) REFERENCES role(id) ON DELETE CASCADE;

ALTER TABLE ONLY local_user
    ADD CONSTRAINT local_user_user_id_fkey FOREIGN KEY (user_id, domain_id) REFERENCES "user"(id, domain_id) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY nonlocal_user
    ADD CONSTRAINT nonlocal_user_user_id_fkey FOREIGN KEY (user_id, domain_id) REFERENCES "user"(id, domain_id) ON UPDATE CASCADE ON DELETE CASCADE;

ALTER TABLE ONLY password
    ADD CONSTRAINT password_local_user_id_fkey FOREIGN KEY (local_user_id) REFERENCES local_user(id) ON DELETE CASCADE;

ALTER TABLE ONLY project
    ADD CONSTRAINT project_domain_id_fkey FOREIGN KEY (domain_id) REFERENCES project(id);

ALTER TABLE ONLY project_endpoint_group
    ADD CONSTRAINT project_endpoint_group_endpoint_group_id_fkey FOREIGN KEY (endpoint_group_id) REFERENCES endpoint_group(id);

ALTER TABLE ONLY project_option
    ADD CONSTRAINT project_option_project_id_fkey FOREIGN KEY (project_id) REFERENCES project(id) ON DELETE CASCADE;

ALTER TABLE ONLY project
    ADD CONSTRAINT project_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES project(id);

ALTER TABLE ONLY project_tag
    ADD CONSTRAINT project_tag_project_id_fkey FOREIGN KEY (project_id) REFERENCES project(id) ON DELETE CASCADE;

ALTER TABLE ONLY request_token
    ADD CONSTRAINT request_token_consumer_id_fkey FOREIGN KEY (consumer_id) REFERENCES consumer(id);

ALTER TABLE ONLY role_option
    ADD CONSTRAINT role_option_role_id_fkey FOREIGN KEY (role_id) REFERENCES role(id) ON DELETE CASCADE;

ALTER TABLE ONLY user_option
    ADD CONSTRAINT user_option_user_id_fkey FOREIGN KEY (user_id) REFERENCES "user"(id) ON DELETE CASCADE;
