//! A whole demo deployment on loopback: the embedded identity server (SQLite and Fernet keys in
//! the run directory), the users, projects, roles and catalog of a small OpenStack, and the four
//! reference services, each with its own configuration file written next to the run.
//!
//! | user | role(s) | used as |
//! |---|---|---|
//! | `alice` | `member` on `demo` | the end user who starts the operations |
//! | `nova` | `admin`, `service` on `service` | compute's `[keystone_authtoken]` and `[neutron]`; its application credential `nova-service-user` (role `service` only) is compute's `[service_user]` |
//! | `nova-norole` | `member` on `service` | compute's `[service_user]` in the "lacking the role" runs |
//! | `cinder`, `glance`, `neutron` | `service` on `service` | the receivers' `[keystone_authtoken]` |
//!
//! They are made as an operator would make them: [`baton_server::bootstrap::initialize`]
//! (`db_sync`, `fernet_setup`, `bootstrap`, the function baton-testkit uses too) before the
//! server first starts, then the projects, users, grants, services and endpoints through the
//! admin API over HTTP, as the bootstrap admin, so the admin API's rules apply to them.
//!
//! Compute is restarted with another nova.conf to switch between the three `[service_user]`
//! set-ups ([`Mode`]); its servers and tasks survive, like Nova's database.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_authtoken::RequestRecord;
use baton_client::{
    AccessInfo, AuthPlugin, DomainRef, EndpointFilter, HttpClient, Password, Scope, Session,
    UserRef,
};
use baton_config::IniFile;
use baton_server::bootstrap::{initialize, BootstrapOptions};
use rand::RngCore;
use serde_json::{json, Value};

use crate::common::{
    authenticator, http_options, keystone_authtoken_section, reserve_port, Hosted,
};
use crate::compute::{self, ComputeSettings, ComputeState, Outbound, Server, VolumeRef};
use crate::identity::EmbeddedIdentity;
use crate::image::{self, ImageState};
use crate::network::{self, NetworkState};
use crate::volume::{self, VolumeState};

/// The region of every endpoint.
pub const REGION: &str = "RegionOne";
/// Host names of the two compute hosts a live migration moves between.
pub const HOST_A: &str = "compute-1";
/// The destination host of a live migration.
pub const HOST_B: &str = "compute-2";

/// How compute sends service tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// No `[service_user]` (`send_service_user_token = false`): the user's token alone.
    NoServiceUser,
    /// `[service_user]` as `nova`, who holds the `service` role, logging in with an application
    /// credential (`auth_type = v3applicationcredential`) that carries only that role.
    ServiceUser,
    /// `[service_user]` as `nova-norole`, who lacks it; receivers have
    /// `service_token_roles_required = true`.
    ServiceUserWithoutRole,
    /// `[service_user]` as in [`Mode::ServiceUser`], and compute asks for a continuation token
    /// when an operation starts (docs/continuation.md): every call of the operation carries it
    /// (with the service token) instead of the user's token, so nothing expired is sent.
    Continuation,
}

impl Mode {
    /// Every mode, in the order the demo runs them.
    pub const ALL: [Mode; 4] = [
        Mode::NoServiceUser,
        Mode::ServiceUser,
        Mode::ServiceUserWithoutRole,
        Mode::Continuation,
    ];

    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Mode::NoServiceUser => "none",
            Mode::ServiceUser => "nova (service role, application credential)",
            Mode::ServiceUserWithoutRole => "nova-norole (no service role)",
            Mode::Continuation => "nova, continuation tokens",
        }
    }

    /// The mode's name in file and directory names.
    pub fn slug(self) -> &'static str {
        match self {
            Mode::NoServiceUser => "no-service-user",
            Mode::ServiceUser => "service-user",
            Mode::ServiceUserWithoutRole => "service-user-without-role",
            Mode::Continuation => "continuation",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// How to set up a deployment.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    /// The run directory (created): database, keys, configuration files, timelines.
    pub dir: PathBuf,
    /// `[token] expiration`, seconds.
    pub token_expiration: u32,
    /// Length of the long phase of each operation.
    pub operation: Duration,
    /// How long before expiry services renew their own and their service tokens.
    pub stale_window: Duration,
    /// `[token] allow_expired_window` of the identity server, seconds (Keystone's two days when
    /// `None`).
    pub allow_expired_window: Option<u32>,
}

impl CloudOptions {
    /// Tokens of `expiration` seconds and operations half again as long, so that every
    /// operation outlives the token it started with.
    pub fn new(dir: impl Into<PathBuf>, expiration: u32) -> CloudOptions {
        CloudOptions {
            dir: dir.into(),
            token_expiration: expiration,
            operation: Duration::from_millis(expiration as u64 * 1500),
            stale_window: Duration::from_millis((expiration as u64 * 1000 / 3).max(200)),
            allow_expired_window: None,
        }
    }
}

/// Generated passwords (kept in memory and in the 0600 configuration files of the run).
#[derive(Clone)]
struct Passwords {
    admin: String,
    alice: String,
    nova: String,
    nova_norole: String,
    /// The secret of nova's application credential, compute's `[service_user]`.
    nova_app_cred: String,
    cinder: String,
    glance: String,
    neutron: String,
}

impl Passwords {
    /// Fresh random passwords for the demo's users.
    fn random() -> Passwords {
        Passwords {
            admin: password(),
            alice: password(),
            nova: password(),
            nova_norole: password(),
            nova_app_cred: password(),
            cinder: password(),
            glance: password(),
            neutron: password(),
        }
    }
}

/// Every service's audit record of each request it received ([`baton_authtoken::RequestRecord`],
/// handed over by its auth_token middleware), with the service's lane (`compute`, `volume`,
/// `image`, `network`); the timelines take each call's identities and decision from them.
/// The newest [`ReceiverRecords::KEEP`] are kept.
#[derive(Clone, Default)]
pub struct ReceiverRecords(Arc<Mutex<std::collections::VecDeque<(&'static str, RequestRecord)>>>);

impl ReceiverRecords {
    /// How many records are kept.
    pub const KEEP: usize = 20_000;

    /// Makes `auth` hand its records over, as `lane`'s.
    fn attach(&self, auth: &baton_authtoken::Authenticator, lane: &'static str) {
        let records = self.clone();
        auth.set_record_sink(Arc::new(move |r| {
            let mut q = records.0.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() >= Self::KEEP {
                q.pop_front();
            }
            q.push_back((lane, r));
        }));
    }

    /// The records made at or after `since`, oldest first.
    pub fn since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Vec<(&'static str, RequestRecord)> {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().filter(|(_, r)| r.at >= since).cloned().collect()
    }
}

/// The lane of a receiving service user.
fn lane_of(service_user: &str) -> &'static str {
    match service_user {
        "cinder" => "volume",
        "glance" => "image",
        "neutron" => "network",
        _ => "compute",
    }
}

/// The auth_token middlewares of Cinder, Glance and Neutron at their first start: each one's
/// `[keystone_authtoken]` is written to `DIR/NAME.conf` (readable by the owner only), for the
/// operator to look at, and read back.
struct Receivers<'a> {
    dir: &'a Path,
    identity_url: &'a str,
    passwords: &'a Passwords,
    stale: Duration,
    records: &'a ReceiverRecords,
}

impl Receivers<'_> {
    fn authenticator(
        &self,
        name: &str,
        pw: &str,
    ) -> anyhow::Result<baton_authtoken::Authenticator> {
        let text = keystone_authtoken_section(self.identity_url, name, pw);
        let path = self.dir.join(format!("{name}.conf"));
        baton_config::write_private(&path, &text)?;
        let ini = IniFile::parse(&text, &path.display().to_string())?;
        let auth = authenticator(&ini, self.stale)?;
        self.records.attach(&auth, lane_of(name));
        Ok(auth)
    }

    /// Cinder, Glance and Neutron on their listeners (in that order).
    fn serve(
        &self,
        [volume, image, network]: [std::net::TcpListener; 3],
        volume_state: &VolumeState,
        image_state: &ImageState,
        network_state: &NetworkState,
    ) -> anyhow::Result<HashMap<&'static str, Hosted>> {
        let volume_host =
            Hosted::serve(volume, volume::router(volume_state.clone(), self.cinder()?))?;
        let image_host = Hosted::serve(image, image::router(image_state.clone(), self.glance()?))?;
        let network_host = Hosted::serve(
            network,
            network::router(network_state.clone(), self.neutron()?),
        )?;
        Ok(HashMap::from([
            ("volume", volume_host),
            ("image", image_host),
            ("network", network_host),
        ]))
    }

    fn cinder(&self) -> anyhow::Result<baton_authtoken::Authenticator> {
        self.authenticator("cinder", &self.passwords.cinder)
    }

    fn glance(&self) -> anyhow::Result<baton_authtoken::Authenticator> {
        self.authenticator("glance", &self.passwords.glance)
    }

    fn neutron(&self) -> anyhow::Result<baton_authtoken::Authenticator> {
        self.authenticator("neutron", &self.passwords.neutron)
    }
}

fn password() -> String {
    let mut bytes = [0u8; 15];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// The ids of what the deployment created.
#[derive(Debug, Clone)]
pub struct CloudIds {
    /// The `demo` project, where alice's servers and volumes live.
    pub demo_project: String,
    /// The `service` project, where the service users hold their roles.
    pub service_project: String,
    /// Alice's user id: the user whose token the operations start with.
    pub alice: String,
    /// The network the demo's servers are on.
    pub network: String,
    /// Nova's application credential `nova-service-user`: compute's `[service_user]`.
    pub nova_app_cred: String,
}

/// Servers and volumes set up behind the APIs' backs for a scenario.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The server (on `HOST_A`).
    pub server_id: String,
    /// Its volume, attached and in use.
    pub volume_id: String,
    /// The volume's attachment to the server.
    pub attachment_id: String,
    /// The server's port, bound to its host.
    pub port_id: String,
}

/// A running demo deployment.
pub struct Cloud {
    /// How it was set up (directory, token lifetime, operation length).
    pub options: CloudOptions,
    /// The run directory: keystone.db, fernet-keys, the services' configuration files.
    pub dir: PathBuf,
    /// The identity server.
    pub identity: EmbeddedIdentity,
    /// What provisioning created.
    pub ids: CloudIds,
    /// The volume service's data (Cinder's part).
    pub volume: VolumeState,
    /// The image service's data (Glance's part).
    pub image: ImageState,
    /// The network service's data (Neutron's part).
    pub network: NetworkState,
    /// The compute service's data (Nova's part), kept across restarts.
    pub compute: ComputeState,
    /// Where compute answers.
    pub compute_url: String,
    /// Where the volume service answers.
    pub volume_url: String,
    /// Where the image service answers.
    pub image_url: String,
    /// Where the network service answers.
    pub network_url: String,
    /// What every service recorded of the requests it received.
    pub records: ReceiverRecords,
    compute_addr: std::net::SocketAddr,
    passwords: Passwords,
    hosts: tokio::sync::Mutex<HashMap<&'static str, Hosted>>,
    mode: Mutex<Mode>,
    http: HttpClient,
    client: reqwest::Client,
}

impl Cloud {
    /// Sets everything up and starts it, compute in `mode`.
    pub async fn start(options: CloudOptions, mode: Mode) -> anyhow::Result<Cloud> {
        std::fs::create_dir_all(&options.dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", options.dir.display()))?;
        let dir = std::fs::canonicalize(&options.dir)?;
        let id_listener = reserve_port()?;
        let vol_listener = reserve_port()?;
        let img_listener = reserve_port()?;
        let net_listener = reserve_port()?;
        let cmp_listener = reserve_port()?;
        let url = |l: &std::net::TcpListener| -> anyhow::Result<String> {
            Ok(format!("http://{}", l.local_addr()?))
        };
        let identity_url = url(&id_listener)?;
        let volume_url = url(&vol_listener)?;
        let image_url = url(&img_listener)?;
        let network_url = url(&net_listener)?;
        let compute_url = url(&cmp_listener)?;
        let compute_addr = cmp_listener.local_addr()?;

        let passwords = Passwords::random();
        let stale = options.stale_window;
        let services = [
            ("compute", "nova", format!("{compute_url}/v2.1")),
            ("volumev3", "cinderv3", format!("{volume_url}/v3")),
            ("image", "glance", image_url.clone()),
            ("network", "neutron", network_url.clone()),
        ];
        let (identity, ids) =
            start_identity(&dir, &options, id_listener, &passwords, &services).await?;

        let roles = vec!["service".to_string()];
        let volume_state = VolumeState::new(roles.clone())?;
        let image_state = ImageState::new(roles);
        let network_state = NetworkState::default();
        let records = ReceiverRecords::default();
        let receivers = Receivers {
            dir: &dir,
            identity_url: &identity_url,
            passwords: &passwords,
            stale,
            records: &records,
        };
        let hosts = receivers.serve(
            [vol_listener, img_listener, net_listener],
            &volume_state,
            &image_state,
            &network_state,
        )?;
        let cloud = Cloud {
            dir,
            identity,
            ids,
            volume: volume_state,
            image: image_state,
            network: network_state,
            compute: ComputeState::default(),
            compute_url,
            volume_url,
            image_url,
            network_url,
            records,
            compute_addr,
            passwords,
            hosts: tokio::sync::Mutex::new(hosts),
            mode: Mutex::new(mode),
            http: http_options().build()?,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            options,
        };
        let router = cloud.compute_router(mode)?;
        cloud
            .hosts
            .lock()
            .await
            .insert("compute", Hosted::serve(cmp_listener, router)?);
        cloud.write_openrc()?;
        Ok(cloud)
    }

    /// Where the identity server answers.
    pub fn identity_url(&self) -> String {
        self.identity.url()
    }

    /// How compute sends service tokens now.
    pub fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// nova.conf for a mode.
    pub fn nova_conf(&self, mode: Mode) -> String {
        let id = self.identity_url();
        let creds = |user: &str, pw: &str| {
            format!(
                "auth_type = v3password\nauth_url = {id}/v3\nusername = {user}\npassword = {pw}\n\
                 user_domain_name = Default\nproject_name = service\nproject_domain_name = Default\n"
            )
        };
        let service_user = match mode {
            Mode::NoServiceUser => "send_service_user_token = false\n".to_string(),
            Mode::ServiceUser | Mode::Continuation => format!(
                "send_service_user_token = true\nauth_type = v3applicationcredential\n\
                 auth_url = {id}/v3\napplication_credential_id = {}\n\
                 application_credential_secret = {}\n",
                self.ids.nova_app_cred, self.passwords.nova_app_cred
            ),
            Mode::ServiceUserWithoutRole => format!(
                "send_service_user_token = true\n{}",
                creds("nova-norole", &self.passwords.nova_norole)
            ),
        };
        // Baton's own: the services a long operation calls, for its continuation token.
        let operations = match mode {
            Mode::Continuation => format!(
                "\n[baton]\ncontinuation_audience = {}\n",
                compute::CONTINUATION_AUDIENCE.join(", ")
            ),
            _ => String::new(),
        };
        format!(
            "# nova.conf of the reference compute ({})\n{}\n[neutron]\n{}\n[service_user]\n{}{operations}",
            mode.slug(),
            keystone_authtoken_section(&id, "nova", &self.passwords.nova),
            creds("nova", &self.passwords.nova),
            service_user
        )
    }

    fn compute_router(&self, mode: Mode) -> anyhow::Result<axum::Router> {
        let text = self.nova_conf(mode);
        let path = self.dir.join("nova.conf");
        baton_config::write_private(&path, &text)?;
        let ini = IniFile::parse(&text, &path.display().to_string())?;
        let stale = self.options.stale_window;
        let auth = authenticator(&ini, stale)?;
        self.records.attach(&auth, "compute");
        Ok(compute::router(
            self.compute.clone(),
            auth,
            Outbound::from_ini(&ini, stale)?,
            ComputeSettings {
                host: HOST_A.into(),
                other_host: HOST_B.into(),
                operation: self.options.operation,
                stale_window: stale,
            },
        ))
    }

    /// Restarts compute with the nova.conf of `mode` (same port, same servers and tasks).
    pub async fn set_mode(&self, mode: Mode) -> anyhow::Result<()> {
        if self.mode() == mode {
            return Ok(());
        }
        let router = self.compute_router(mode)?;
        let mut hosts = self.hosts.lock().await;
        if let Some(old) = hosts.remove("compute") {
            old.stop().await;
        }
        hosts.insert("compute", Hosted::rebind(self.compute_addr, router)?);
        *self.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode;
        Ok(())
    }

    /// Restarts the three receivers (empty validation caches, new own tokens) and compute, each
    /// on its own address.
    pub async fn restart_services(&self) -> anyhow::Result<()> {
        let stale = self.options.stale_window;
        let id = self.identity_url();
        let receiver = |name: &str, pw: &str| -> anyhow::Result<baton_authtoken::Authenticator> {
            let text = keystone_authtoken_section(&id, name, pw);
            let ini = IniFile::parse(&text, &format!("{name}.conf"))?;
            let auth = authenticator(&ini, stale)?;
            self.records.attach(&auth, lane_of(name));
            Ok(auth)
        };
        let routers = [
            (
                "volume",
                volume::router(
                    self.volume.clone(),
                    receiver("cinder", &self.passwords.cinder)?,
                ),
            ),
            (
                "image",
                image::router(
                    self.image.clone(),
                    receiver("glance", &self.passwords.glance)?,
                ),
            ),
            (
                "network",
                network::router(
                    self.network.clone(),
                    receiver("neutron", &self.passwords.neutron)?,
                ),
            ),
            ("compute", self.compute_router(self.mode())?),
        ];
        let mut hosts = self.hosts.lock().await;
        for (name, router) in routers {
            if let Some(old) = hosts.remove(name) {
                let addr = old.addr;
                old.stop().await;
                hosts.insert(name, Hosted::rebind(addr, router)?);
            }
        }
        Ok(())
    }

    /// Stops every service and the identity server.
    pub async fn stop(self) {
        for (_, h) in self.hosts.into_inner() {
            h.stop().await;
        }
        let identity = self.identity;
        let _ = tokio::task::spawn_blocking(move || identity.stop()).await;
    }

    /// A new token for alice, scoped to the demo project.
    pub async fn user_token(&self) -> anyhow::Result<Arc<AccessInfo>> {
        let plugin = Password::new(
            format!("{}/v3", self.identity_url()).parse()?,
            UserRef::name("alice", DomainRef::Name("Default".into())),
            self.passwords.alice.clone(),
        )
        .with_scope(Scope::project_name(
            "demo",
            DomainRef::Name("Default".into()),
        ));
        Ok(plugin.get_access(&self.http).await?)
    }

    /// A request as the holder of `token` (no service token), answered with its status, headers
    /// and JSON body.
    pub async fn call(
        &self,
        token: &AccessInfo,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Value)> {
        let mut req = self
            .client
            .request(method, url)
            .header("x-auth-token", token.token().expose());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// An `ACTIVE` server of alice's on [`HOST_A`] with a volume in use and a bound port.
    pub fn seed_server(&self, name: &str) -> Fixture {
        let server_id = crate::common::new_uuid();
        let (volume_id, attachment_id) =
            self.volume
                .seed_in_use(&self.ids.demo_project, &server_id, HOST_A);
        let port_id = self.network.seed_port(
            &self.ids.demo_project,
            &self.ids.network,
            &server_id,
            HOST_A,
        );
        self.compute.seed_server(Server {
            id: server_id.clone(),
            name: name.into(),
            project_id: self.ids.demo_project.clone(),
            user_id: self.ids.alice.clone(),
            status: "ACTIVE".into(),
            task_state: None,
            host: HOST_A.into(),
            network_id: self.ids.network.clone(),
            volumes: vec![VolumeRef {
                volume_id: volume_id.clone(),
                attachment_id: attachment_id.clone(),
            }],
            ports: vec![port_id.clone()],
            fault: None,
        });
        Fixture {
            server_id,
            volume_id,
            attachment_id,
            port_id,
        }
    }

    /// An `available` volume of alice's.
    pub fn seed_volume(&self, name: &str) -> String {
        self.volume.seed_volume(&self.ids.demo_project, name)
    }

    /// `alice-openrc` in the run directory: how to act as alice by hand.
    fn write_openrc(&self) -> anyhow::Result<()> {
        let text = format!(
            "export OS_AUTH_URL={}/v3 OS_IDENTITY_API_VERSION=3 OS_USERNAME=alice \
             OS_PASSWORD='{}' OS_PROJECT_NAME=demo OS_USER_DOMAIN_NAME=Default \
             OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME={REGION}\n",
            self.identity_url(),
            self.passwords.alice
        );
        Ok(baton_config::write_private(
            &self.dir.join("alice-openrc"),
            &text,
        )?)
    }

    /// How to call the services by hand (no secrets: they are in the 0600 `alice-openrc`).
    pub fn manual_instructions(&self) -> String {
        let dir = self.dir.display();
        let f = self.seed_server("by-hand");
        let vol = self.seed_volume("by-hand-boot");
        format!(
            "The deployment keeps running (Ctrl-C stops it). Everything is in {dir}.\n\
             \n  identity  {id}/v3\n  compute   {c}/v2.1   (nova.conf: {dir}/nova.conf)\n  \
             volume    {v}/v3\n  image     {i}/v2\n  network   {n}/v2.0\n\n\
             Act as alice (member of project demo):\n\n  \
             source {dir}/alice-openrc\n  \
             TOKEN=$(curl -si -H 'Content-Type: application/json' -d '{{\"auth\":{{\"identity\":{{\"methods\":[\"password\"],\"password\":{{\"user\":{{\"name\":\"alice\",\"domain\":{{\"name\":\"Default\"}},\"password\":\"'\"$OS_PASSWORD\"'\"}}}}}},\"scope\":{{\"project\":{{\"name\":\"demo\",\"domain\":{{\"name\":\"Default\"}}}}}}}}}}' \
             $OS_AUTH_URL/auth/tokens | awk -F': ' 'tolower($1)==\"x-subject-token\" {{print $2}}' | tr -d '\\r')\n\n\
             A server ({s}) with volume {fv} in use (attachment {fa}) is ready:\n\n  \
             curl -s -X POST -H \"X-Auth-Token: $TOKEN\" -H 'Content-Type: application/json' \
             -d '{{\"os-migrateLive\": {{\"host\": null, \"block_migration\": false}}}}' -i {c}/v2.1/servers/{s}/action\n  \
             curl -s -H \"X-Auth-Token: $TOKEN\" {c}/v2.1/tasks/<x-openstack-request-id>     # progress, calls, why it failed\n  \
             curl -s -X POST -H \"X-Auth-Token: $TOKEN\" -H 'Content-Type: application/json' \
             -d '{{\"createImage\": {{\"name\": \"snap\"}}}}' -i {c}/v2.1/servers/{s}/action\n  \
             curl -s -X DELETE -H \"X-Auth-Token: $TOKEN\" -i {v}/v3/attachments/{fa}        # 409: CVE-2023-2088\n  \
             curl -s -X DELETE -H \"X-Auth-Token: $TOKEN\" -i {c}/v2.1/servers/{s}/os-volume_attachments/{fv}\n\n\
             Boot from the available volume {vol}:\n\n  \
             curl -s -X POST -H \"X-Auth-Token: $TOKEN\" -H 'Content-Type: application/json' -i {c}/v2.1/servers \
             -d '{{\"server\": {{\"name\": \"bfv\", \"networks\": [{{\"uuid\": \"{net}\"}}], \"block_device_mapping_v2\": \
             [{{\"uuid\": \"{vol}\", \"source_type\": \"volume\", \"destination_type\": \"volume\", \"boot_index\": 0}}]}}}}'\n\n\
             Tokens live {exp} s; operations take about {op:.1} s. Compute runs with [service_user] = {mode}.\n",
            id = self.identity_url(),
            c = self.compute_url,
            v = self.volume_url,
            i = self.image_url,
            n = self.network_url,
            s = f.server_id,
            fv = f.volume_id,
            fa = f.attachment_id,
            net = self.ids.network,
            exp = self.options.token_expiration,
            op = self.options.operation.as_secs_f64(),
            mode = self.mode().label(),
        )
    }
}

/// The admin API (`/v3` of the identity service in its catalog) as one user: the bootstrap
/// admin, or nova making its own application credential.
struct AdminApi {
    session: Session,
}

impl AdminApi {
    fn identity() -> EndpointFilter {
        EndpointFilter::new("identity")
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .session
            .get(AdminApi::identity(), path)
            .send_json()
            .await?)
    }

    /// `POST` of `{kind: body}`; the id of what was created.
    async fn create(&self, path: &str, kind: &str, body: Value) -> anyhow::Result<String> {
        let created: Value = self
            .session
            .post(AdminApi::identity(), path)
            .json(&json!({ kind: body }))
            .send_json()
            .await?;
        created[kind]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("POST {path}: no {kind} id in the answer"))
    }

    async fn put(&self, path: &str) -> anyhow::Result<()> {
        self.session.put(AdminApi::identity(), path).send().await?;
        Ok(())
    }
}

/// The identity server: initialized as an installer does before the first start (there is no
/// API for that), started on `listener`, then given the demo's roles, projects, users and
/// catalog (`services`: type, name, URL) through its admin API, as an operator would.
async fn start_identity(
    dir: &Path,
    options: &CloudOptions,
    listener: std::net::TcpListener,
    passwords: &Passwords,
    services: &[(&str, &str, String)],
) -> anyhow::Result<(EmbeddedIdentity, CloudIds)> {
    let identity_url = format!("http://{}", listener.local_addr()?);
    let mut config = EmbeddedIdentity::config(dir, options.token_expiration);
    if let Some(w) = options.allow_expired_window {
        config.token.allow_expired_window = w;
    }
    let domain_id = config.identity.default_domain_id.clone();
    initialize(
        &config,
        &BootstrapOptions::admin(passwords.admin.clone(), &identity_url),
    )
    .await?;
    let identity = EmbeddedIdentity::start(config, listener)?;
    let ids = provision(
        &identity_url,
        &domain_id,
        passwords,
        options.stale_window,
        services,
    )
    .await?;
    Ok((identity, ids))
}

/// Creates the projects, users, role assignments and catalog through the admin API, as the
/// bootstrap admin (project-scoped to `admin`).
async fn provision(
    identity_url: &str,
    domain_id: &str,
    pw: &Passwords,
    stale: Duration,
    services: &[(&str, &str, String)],
) -> anyhow::Result<CloudIds> {
    let default = || DomainRef::Name("Default".into());
    let admin = Password::new(
        format!("{identity_url}/v3").parse()?,
        UserRef::name("admin", default()),
        pw.admin.clone(),
    )
    .with_scope(Scope::project_name("admin", default()))
    .with_stale_window(stale);
    let api = AdminApi {
        session: Session::builder()
            .http_options(http_options())
            .build(Arc::new(admin))?,
    };
    let roles = demo_roles(&api).await?;
    let project = |name: &'static str| {
        api.create(
            "/projects",
            "project",
            json!({ "name": name, "domain_id": domain_id }),
        )
    };
    let service_project = project("service").await?;
    let demo_project = project("demo").await?;
    let users: [(&str, &str, &str, &[&str]); 6] = [
        ("alice", &pw.alice, &demo_project, &["member"]),
        ("nova", &pw.nova, &service_project, &["admin", "service"]),
        (
            "nova-norole",
            &pw.nova_norole,
            &service_project,
            &["member"],
        ),
        ("cinder", &pw.cinder, &service_project, &["service"]),
        ("glance", &pw.glance, &service_project, &["service"]),
        ("neutron", &pw.neutron, &service_project, &["service"]),
    ];
    let mut alice_id = String::new();
    let mut nova_id = String::new();
    for (name, password, project, grants) in users {
        let id = api
            .create(
                "/users",
                "user",
                json!({ "name": name, "domain_id": domain_id, "password": password,
                        "default_project_id": project, "enabled": true }),
            )
            .await?;
        for role in grants {
            api.put(&format!(
                "/projects/{project}/users/{id}/roles/{}",
                roles[*role]
            ))
            .await?;
        }
        match name {
            "alice" => alice_id = id,
            "nova" => nova_id = id,
            _ => {}
        }
    }
    register_services(&api, services).await?;
    let nova_app_cred = nova_application_credential(identity_url, &nova_id, pw, stale).await?;
    Ok(CloudIds {
        demo_project,
        service_project,
        alice: alice_id,
        network: crate::common::new_uuid(),
        nova_app_cred,
    })
}

/// Nova makes its own application credential for `[service_user]`, as an operator would run
/// `openstack application credential create --role service` as nova: only the `service`
/// role of the project, no expiry. Returns its id.
async fn nova_application_credential(
    identity_url: &str,
    nova_id: &str,
    pw: &Passwords,
    stale: Duration,
) -> anyhow::Result<String> {
    let default = || DomainRef::Name("Default".into());
    let nova = Password::new(
        format!("{identity_url}/v3").parse()?,
        UserRef::name("nova", default()),
        pw.nova.clone(),
    )
    .with_scope(Scope::project_name("service", default()))
    .with_stale_window(stale);
    let api = AdminApi {
        session: Session::builder()
            .http_options(http_options())
            .build(Arc::new(nova))?,
    };
    api.create(
        &format!("/users/{nova_id}/application_credentials"),
        "application_credential",
        json!({ "name": "nova-service-user", "secret": pw.nova_app_cred,
                "roles": [{ "name": "service" }] }),
    )
    .await
}

/// The global roles the demo grants, by name: bootstrap makes reader, member, manager, admin
/// and service; any of service, member and admin that is missing is created.
async fn demo_roles(api: &AdminApi) -> anyhow::Result<HashMap<String, String>> {
    let listed = api.get("/roles").await?;
    let mut roles: HashMap<String, String> = listed["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["domain_id"].is_null())
        .filter_map(|r| Some((r["name"].as_str()?.into(), r["id"].as_str()?.into())))
        .collect();
    for name in ["service", "member", "admin"] {
        if !roles.contains_key(name) {
            let id = api
                .create("/roles", "role", json!({ "name": name }))
                .await?;
            roles.insert(name.into(), id);
        }
    }
    Ok(roles)
}

/// Each service `(type, name, URL)` in the catalog, with a public and an internal endpoint
/// in the demo's region.
async fn register_services(
    api: &AdminApi,
    services: &[(&str, &str, String)],
) -> anyhow::Result<()> {
    for (service_type, name, url) in services {
        let service_id = api
            .create(
                "/services",
                "service",
                json!({ "type": service_type, "name": name, "enabled": true }),
            )
            .await?;
        for interface in ["public", "internal"] {
            api.create(
                "/endpoints",
                "endpoint",
                json!({ "service_id": service_id, "interface": interface,
                        "region_id": REGION, "url": url, "enabled": true }),
            )
            .await?;
        }
    }
    Ok(())
}
