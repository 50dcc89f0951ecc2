//! `clouds.yaml`, `secure.yaml` and `OS_*` environment variables, read the way openstacksdk's
//! config loader (`openstack/config/loader.py`) and python-openstackclient (osc-lib's
//! `OSC_Config` and its `--os-*` options) read them.
//!
//! What is reproduced:
//!
//! * **Files.** `OS_CLIENT_CONFIG_FILE`, then `clouds.yaml`/`clouds.yml`/`clouds.json` in the
//!   current directory, `$XDG_CONFIG_HOME/openstack` (default `~/.config/openstack`),
//!   `~/.config/openstack`, `/etc/xdg/openstack` and `/etc/openstack`: the first that exists is
//!   read. `secure.*` is found the same way (`OS_CLIENT_SECURE_FILE` first) and merged into it
//!   key by key.
//! * **Which cloud.** `--os-cloud`, else `OS_CLOUD`; else the cloud made of the `OS_*`
//!   environment (named `envvars`, or `OS_CLOUD_NAME`) when it holds more than selectors; else
//!   the only cloud of the file.
//! * **Precedence.** Command-line options over the `OS_*` variables that python-openstackclient
//!   registers as option defaults (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`,
//!   `OS_PROJECT_NAME`, `OS_REGION_NAME`, `OS_INTERFACE`, `OS_CACERT`, `OS_AUTH_TYPE`, ...) over
//!   the chosen cloud of `clouds.yaml` (and its `regions` entry). Other `OS_*` variables (e.g.
//!   `OS_INSECURE`) only count through the `envvars` cloud, as in openstacksdk.
//! * **Fix-ups.** `tenant_*` as `project_*`, `auth_plugin` as `auth_type`, `*endpoint_type` as
//!   `interface`; `domain_id`/`domain_name` with a project fill the user and project domains;
//!   the password types get `OS_DEFAULT_DOMAIN` (default `default`) as user and project domain
//!   id when none is given; without `auth_type`, a username selects `v3password` and anything
//!   else `password`.
//!
//! Differences, on purpose: a file that is not valid YAML/JSON is an error naming it
//! (openstacksdk skips it with a warning and goes on with the next file, which hides typos);
//! vendor profiles (`clouds-public.yaml`, `profile:`) are not read; the auth types are those
//! Baton's client has (`password`, `v3password`, `token`, `v3token`, `v3applicationcredential`).
//!
//! Every error is a [`ConfigError`] (the INI readers' type, [`ConfigErrorKind::Cloud`]): one line
//! naming where the value came from ([`CloudOrigin`]): `FILE: clouds.NAME.auth.KEY`, the
//! environment variable or the command-line option. Secrets are never part of a message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[cfg(doc)]
use baton_config::ConfigErrorKind;
use baton_config::{CloudOrigin, ConfigError};

use crate::access::Interface;
use crate::config::{AuthConfig, AuthProblem, AuthType, OptionSource, AUTH_OPTIONS, AUTH_TYPES};
use crate::error::Result as ClientResult;
use crate::http::HttpOptions;
use crate::plugin::AuthPlugin;
use crate::session::Session;

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A cloud error: `reason` about the setting at `origin` (`None`: the cloud as a whole).
fn err<T>(origin: impl Into<Option<CloudOrigin>>, reason: impl Into<String>) -> Result<T> {
    Err(ConfigError::cloud(origin, reason))
}

/// A clouds/secure file as a whole, for errors.
fn file(path: &Path) -> CloudOrigin {
    CloudOrigin::File {
        path: path.to_path_buf(),
    }
}

/// A key of a clouds/secure file, e.g. `clouds.prod.auth.auth_url`.
fn file_key(path: &Path, key: impl Into<String>) -> CloudOrigin {
    CloudOrigin::Key {
        path: path.to_path_buf(),
        key: key.into(),
    }
}

/// A parsed YAML/JSON value (mapping order kept).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn from_yaml(y: &saphyr::Yaml) -> Node {
        use saphyr::{Scalar, Yaml};
        match y {
            Yaml::Value(Scalar::Null) => Node::Null,
            Yaml::Value(Scalar::Boolean(b)) => Node::Bool(*b),
            Yaml::Value(Scalar::Integer(i)) => Node::Int(*i),
            Yaml::Value(Scalar::FloatingPoint(f)) => Node::Float(f.into_inner()),
            Yaml::Value(Scalar::String(s)) => Node::Str(s.to_string()),
            Yaml::Representation(s, _, _) => Node::Str(s.to_string()),
            Yaml::Sequence(items) => Node::List(items.iter().map(Node::from_yaml).collect()),
            Yaml::Mapping(m) => Node::Map(
                m.iter()
                    .map(|(k, v)| (Node::from_yaml(k).key_text(), Node::from_yaml(v)))
                    .collect(),
            ),
            Yaml::Tagged(_, inner) => Node::from_yaml(inner),
            Yaml::Alias(_) | Yaml::BadValue => Node::Null,
        }
    }

    fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value;
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Node::Int(i),
                None => Node::Float(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Node::Str(s.clone()),
            Value::Array(a) => Node::List(a.iter().map(Node::from_json).collect()),
            Value::Object(o) => Node::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// A mapping key as text (YAML allows non-string keys; openstacksdk would use them as is).
    fn key_text(&self) -> String {
        match self {
            Node::Str(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Node::Null => "None".to_string(),
            Node::List(_) | Node::Map(_) => String::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One value with its origin.
#[derive(Debug, Clone)]
struct Setting {
    value: Node,
    origin: CloudOrigin,
}

impl Setting {
    fn text(value: impl Into<String>, origin: CloudOrigin) -> Setting {
        Setting {
            value: Node::Str(value.into()),
            origin,
        }
    }

    /// The value as a string option: `None` when null or empty (keystoneauth's "not set");
    /// numbers become their text (openstacksdk's `normalize_keys`).
    fn string(&self) -> Result<Option<String>> {
        match &self.value {
            Node::Null => Ok(None),
            Node::Str(s) if s.trim().is_empty() => Ok(None),
            Node::Str(s) => Ok(Some(s.clone())),
            Node::Int(i) => Ok(Some(i.to_string())),
            Node::Float(f) => Ok(Some(f.to_string())),
            Node::Bool(_) | Node::List(_) | Node::Map(_) => {
                err(self.origin.clone(), "expected a string")
            }
        }
    }

    /// openstacksdk's `get_boolean`: a YAML boolean, or the text `true` in any case.
    fn boolean(&self) -> bool {
        match &self.value {
            Node::Bool(b) => *b,
            Node::Str(s) => s.eq_ignore_ascii_case("true"),
            _ => false,
        }
    }
}

type Settings = BTreeMap<String, Setting>;

/// A region of a cloud: its name and the settings it overrides (`regions: [{name, values}]`).
type Region = (String, Vec<(String, Setting)>);

/// The `OS_*` variables python-openstackclient reads as defaults of its `--os-*` options, with
/// the key they set. Later entries are fall-backs of earlier ones for the same key.
const ENV_OPTIONS: &[(&str, &str)] = &[
    ("OS_CLOUD", "cloud"),
    ("OS_REGION_NAME", "region_name"),
    ("OS_CACERT", "cacert"),
    ("OS_CERT", "cert"),
    ("OS_KEY", "key"),
    ("OS_DEFAULT_DOMAIN", "default_domain"),
    ("OS_INTERFACE", "interface"),
    ("OS_IDENTITY_API_VERSION", "identity_api_version"),
    ("OS_AUTH_TYPE", "auth_type"),
    ("OS_AUTH_PLUGIN", "auth_type"),
    ("OS_AUTH_URL", "auth_url"),
    ("OS_USERNAME", "username"),
    ("OS_USER_ID", "user_id"),
    ("OS_PASSWORD", "password"),
    ("OS_USER_DOMAIN_ID", "user_domain_id"),
    ("OS_USER_DOMAIN_NAME", "user_domain_name"),
    ("OS_PROJECT_ID", "project_id"),
    ("OS_TENANT_ID", "project_id"),
    ("OS_PROJECT_NAME", "project_name"),
    ("OS_TENANT_NAME", "project_name"),
    ("OS_PROJECT_DOMAIN_ID", "project_domain_id"),
    ("OS_PROJECT_DOMAIN_NAME", "project_domain_name"),
    ("OS_DOMAIN_ID", "domain_id"),
    ("OS_DOMAIN_NAME", "domain_name"),
    ("OS_SYSTEM_SCOPE", "system_scope"),
    ("OS_TRUST_ID", "trust_id"),
    ("OS_DEFAULT_DOMAIN_ID", "default_domain_id"),
    ("OS_DEFAULT_DOMAIN_NAME", "default_domain_name"),
    ("OS_TOKEN", "token"),
    ("OS_APPLICATION_CREDENTIAL_ID", "application_credential_id"),
    (
        "OS_APPLICATION_CREDENTIAL_NAME",
        "application_credential_name",
    ),
    (
        "OS_APPLICATION_CREDENTIAL_SECRET",
        "application_credential_secret",
    ),
];

/// `OS_*` variables that only select a cloud: alone, they do not make an `envvars` cloud.
const SELECTORS: [&str; 5] = [
    "OS_CLOUD",
    "OS_REGION_NAME",
    "OS_CLIENT_CONFIG_FILE",
    "OS_CLIENT_SECURE_FILE",
    "OS_CLOUD_NAME",
];

/// Where clouds.yaml files are looked for.
pub fn default_search_path(env: &BTreeMap<String, String>, cwd: Option<&Path>) -> Vec<PathBuf> {
    let home = env.get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let unix_home = home.as_ref().map(|h| h.join(".config").join("openstack"));
    let user = match env.get("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        Some(x) => Some(PathBuf::from(x).join("openstack")),
        None => unix_home.clone(),
    };
    let site = env
        .get("XDG_CONFIG_DIRS")
        .and_then(|d| d.split(':').find(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/etc/xdg"))
        .join("openstack");
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(cwd.map(Path::to_path_buf));
    dirs.extend(user);
    dirs.extend(unix_home);
    dirs.push(site);
    dirs.push(PathBuf::from("/etc/openstack"));
    dirs
}

/// Reads a cloud's configuration. Build it, add command-line options with
/// [`CloudLoader::arg`], then [`CloudLoader::load`].
#[derive(Debug, Clone)]
pub struct CloudLoader {
    env: BTreeMap<String, String>,
    args: BTreeMap<String, (String, String)>,
    search_path: Vec<PathBuf>,
}

impl CloudLoader {
    /// From the process environment and current directory.
    pub fn from_process() -> CloudLoader {
        let cwd = std::env::current_dir().ok();
        CloudLoader::new(std::env::vars(), cwd.as_deref())
    }

    /// From the given environment (only `OS_*`, `HOME` and `XDG_*` are looked at) and
    /// working directory.
    pub fn new<I, K, V>(env: I, cwd: Option<&Path>) -> CloudLoader
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let env: BTreeMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(k, _)| k.starts_with("OS_") || k == "HOME" || k.starts_with("XDG_"))
            .collect();
        let search_path = default_search_path(&env, cwd);
        CloudLoader {
            env,
            args: BTreeMap::new(),
            search_path,
        }
    }

    /// The directories searched for `clouds.*` and `secure.*` (after the `OS_CLIENT_*_FILE`
    /// overrides).
    pub fn search_path(mut self, dirs: Vec<PathBuf>) -> CloudLoader {
        self.search_path = dirs;
        self
    }

    /// A command-line option: `key` as in clouds.yaml (`auth_url`, `password`, `cloud`,
    /// `region_name`, `interface`, `insecure`, ...), `flag` for messages (`--os-auth-url`).
    /// Empty values are ignored, as openstacksdk drops them.
    pub fn arg(mut self, key: &str, flag: &str, value: impl Into<String>) -> CloudLoader {
        let value = value.into();
        if !value.is_empty() {
            self.args
                .insert(key.replace('-', "_"), (flag.to_string(), value));
        }
        self
    }

    fn find_file(&self, override_var: &str, stem: &str) -> Result<Option<(PathBuf, Node)>> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(f) = self.env.get(override_var).filter(|f| !f.is_empty()) {
            candidates.push(PathBuf::from(f));
        }
        for d in &self.search_path {
            for ext in ["yaml", "yml", "json"] {
                candidates.push(d.join(format!("{stem}.{ext}")));
            }
        }
        for path in candidates {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                // openstacksdk goes on with the next file when one cannot be read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    tracing::warn!(path = %path.display(), "cannot read (permission denied); skipped");
                    continue;
                }
                Err(e) => return err(file(&path), format!("cannot read: {e}")),
            };
            let node = parse_file(&path, &text)?;
            match &node {
                Node::Map(_) => {}
                _ => return err(file(&path), "is empty or not a valid mapping"),
            }
            if node.get("clouds").is_none() {
                tracing::warn!(path = %path.display(), "configuration file has no `clouds` key");
            }
            return Ok(Some((path, node)));
        }
        Ok(None)
    }

    /// Reads the files and the environment and resolves one cloud.
    pub fn load(&self) -> Result<CloudConfig> {
        let known = self.file_clouds()?;
        self.load_known(known)
    }

    /// [`CloudLoader::load`] once the files are read.
    fn load_known(&self, mut known: KnownClouds) -> Result<CloudConfig> {
        let mut default_cloud = self.add_env_cloud(&mut known)?;
        if default_cloud.is_none() && known.clouds.len() == 1 {
            default_cloud = known.order.first().cloned();
        }
        let mut args = self.option_settings();
        let cloud_name = match args.remove("cloud") {
            Some(s) => s.string()?,
            None => default_cloud,
        };
        let mut entry = match &cloud_name {
            Some(name) => match known.clouds.get(name) {
                Some(e) => e.clone(),
                None => {
                    return err(
                        None,
                        format!("Cloud {name} was not found ({})", self.searched(&known)),
                    )
                }
            },
            None => CloudEntry::default(),
        };
        // Region: given, else the cloud's first; its `values` apply.
        let wanted_region = match args.remove("region_name") {
            Some(s) => s.string()?,
            None => None,
        };
        let region_name = entry.apply_region(wanted_region, cloud_name.as_deref())?;
        for (k, v) in args {
            entry.set(&k, v);
        }
        for k in ["region_name", "regions", "cloud", "profile"] {
            entry.top.remove(k);
        }
        entry.magic_fixes();
        resolve(
            cloud_name.unwrap_or_default(),
            known.files,
            region_name.filter(|r| !r.is_empty()),
            entry,
        )
    }

    /// The clouds of `clouds.*` merged with those of `secure.*`.
    fn file_clouds(&self) -> Result<KnownClouds> {
        let config = self.find_file("OS_CLIENT_CONFIG_FILE", "clouds")?;
        let secure = self.find_file("OS_CLIENT_SECURE_FILE", "secure")?;
        let mut known = KnownClouds::default();
        for (path, node) in config.iter().chain(secure.iter()) {
            known.add_file(path, node)?;
        }
        Ok(known)
    }

    /// The `clouds_yaml` fuzz target's body (in `fuzz/`, replayed by `tests/client.rs`): a
    /// `clouds.yaml` (or `clouds.json` when `data` starts with `{`) is read and each of its
    /// clouds resolved as `--os-cloud` would, with no environment; errors are values, never
    /// panics.
    #[doc(hidden)]
    pub fn fuzz_clouds_file(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let name = if text.starts_with('{') {
            "clouds.json"
        } else {
            "clouds.yaml"
        };
        let path = Path::new(name);
        let Ok(node) = parse_file(path, &text) else {
            return;
        };
        let mut known = KnownClouds::default();
        if !matches!(node, Node::Map(_)) || known.add_file(path, &node).is_err() {
            return;
        }
        let empty: [(&str, &str); 0] = [];
        for cloud in known.order.clone() {
            let loader = CloudLoader::new(empty, None).search_path(Vec::new()).arg(
                "cloud",
                "--os-cloud",
                cloud,
            );
            let _ = loader.load_known(known.clone());
        }
    }

    /// Adds the cloud made of the `OS_*` environment when it holds more than selectors, and
    /// returns the cloud to use when none is named: `OS_CLOUD`, else that cloud.
    fn add_env_cloud(&self, known: &mut KnownClouds) -> Result<Option<String>> {
        let envvar_key = self
            .env
            .get("OS_CLOUD_NAME")
            .cloned()
            .unwrap_or_else(|| "envvars".to_string());
        if known.clouds.contains_key(&envvar_key) {
            return err(
                known.files.first().map(|p| file(p)),
                format!("defines a cloud named {envvar_key:?}, but the OS_* environment makes a cloud of that name too (set OS_CLOUD_NAME to another name, or rename the file's cloud)"),
            );
        }
        let mut default_cloud = self.env.get("OS_CLOUD").filter(|c| !c.is_empty()).cloned();
        let env_keys: Vec<&String> = self
            .env
            .keys()
            .filter(|k| {
                k.starts_with("OS_")
                    && !k.starts_with("OS_TEST")
                    && !k.starts_with("OS_STD")
                    && !k.starts_with("OS_LOG")
            })
            .collect();
        if env_keys.iter().any(|k| !SELECTORS.contains(&k.as_str())) {
            let mut entry = CloudEntry::default();
            for k in env_keys {
                let key = k["OS_".len()..].to_ascii_lowercase();
                entry.top.insert(
                    key,
                    Setting::text(self.env[k].clone(), CloudOrigin::Env(k.clone())),
                );
            }
            known.clouds.insert(envvar_key.clone(), entry);
            known.order.push(envvar_key.clone());
            if default_cloud.is_none() {
                default_cloud = Some(envvar_key);
            }
        }
        Ok(default_cloud)
    }

    /// Command-line options over the environment's option defaults, with
    /// python-openstackclient's own defaults under both.
    fn option_settings(&self) -> Settings {
        let mut args: Settings = BTreeMap::new();
        for (var, key) in ENV_OPTIONS {
            if args.contains_key(*key) {
                continue;
            }
            if let Some(v) = self.env.get(*var).filter(|v| !v.is_empty()) {
                args.insert(
                    key.to_string(),
                    Setting::text(v.clone(), CloudOrigin::Env(var.to_string())),
                );
            }
        }
        for (key, (flag, value)) in &self.args {
            args.insert(
                key.clone(),
                Setting::text(value.clone(), CloudOrigin::Arg(flag.clone())),
            );
        }
        args.entry("default_domain".into())
            .or_insert_with(|| Setting::text("default", CloudOrigin::Default));
        args.entry("identity_api_version".into())
            .or_insert_with(|| Setting::text("3", CloudOrigin::Default));
        args
    }

    /// Where clouds were looked for, for the "not found" message.
    fn searched(&self, known: &KnownClouds) -> String {
        if known.files.is_empty() {
            format!(
                "no clouds.yaml found in {}",
                self.search_path
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "clouds in {}: {}",
                known
                    .files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if known.order.is_empty() {
                    "none".to_string()
                } else {
                    known.order.join(", ")
                }
            )
        }
    }
}

/// The clouds the files and the environment define, by name, and the names in the order
/// first met; `files` are the files read.
#[derive(Clone, Default)]
struct KnownClouds {
    clouds: BTreeMap<String, CloudEntry>,
    order: Vec<String>,
    files: Vec<PathBuf>,
}

impl KnownClouds {
    /// Adds the clouds of one file (`clouds.*` first, then `secure.*`, which merges over it).
    fn add_file(&mut self, path: &Path, node: &Node) -> Result<()> {
        self.files.push(path.to_path_buf());
        let Some(cs) = node.get("clouds") else {
            return Ok(());
        };
        let Node::Map(entries) = cs else {
            return err(file_key(path, "clouds"), "must be a mapping");
        };
        for (name, body) in entries {
            if !self.clouds.contains_key(name) {
                self.order.push(name.clone());
            }
            let entry = self.clouds.entry(name.clone()).or_default();
            entry.merge_file(path, name, body)?;
        }
        Ok(())
    }
}

fn parse_file(path: &Path, text: &str) -> Result<Node> {
    let is_json = path.extension().is_some_and(|e| e == "json");
    if is_json {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::cloud(file(path), format!("not valid JSON: {e}")))?;
        return Ok(Node::from_json(&v));
    }
    use saphyr::LoadableYamlNode;
    let docs = saphyr::Yaml::load_from_str(text)
        .map_err(|e| ConfigError::cloud(file(path), format!("not valid YAML: {e}")))?;
    match docs.as_slice() {
        [] => Ok(Node::Null),
        [one] => Ok(Node::from_yaml(one)),
        _ => err(file(path), "more than one YAML document"),
    }
}

/// `k` is set to text (not null, not a list or mapping).
fn has_text(m: &Settings, k: &str) -> bool {
    m.get(k)
        .is_some_and(|s| s.string().ok().flatten().is_some())
}

/// One cloud's settings while they are being merged: the top level (where files' cloud keys,
/// the environment and the command line land) and the `auth` mapping.
#[derive(Debug, Clone, Default)]
struct CloudEntry {
    top: Settings,
    auth: Settings,
}

impl CloudEntry {
    fn merge_file(&mut self, path: &Path, name: &str, body: &Node) -> Result<()> {
        let Node::Map(entries) = body else {
            return err(
                file_key(path, format!("clouds.{name}")),
                "must be a mapping",
            );
        };
        for (key, value) in entries {
            let norm = key.replace('-', "_");
            if norm == "auth" {
                let Node::Map(auth) = value else {
                    let key = format!("clouds.{name}.auth");
                    return err(file_key(path, key), "must be a mapping");
                };
                for (k, v) in auth {
                    self.auth.insert(
                        k.replace('-', "_"),
                        Setting {
                            value: v.clone(),
                            origin: file_key(path, format!("clouds.{name}.auth.{k}")),
                        },
                    );
                }
            } else {
                self.top.insert(
                    norm,
                    Setting {
                        value: value.clone(),
                        origin: file_key(path, format!("clouds.{name}.{key}")),
                    },
                );
            }
        }
        Ok(())
    }

    /// A value over the cloud's: an `auth` mapping merges, anything else replaces.
    fn set(&mut self, key: &str, setting: Setting) {
        if key == "auth" {
            if let Node::Map(m) = &setting.value {
                for (k, v) in m {
                    self.auth.insert(
                        k.replace('-', "_"),
                        Setting {
                            value: v.clone(),
                            origin: setting.origin.clone(),
                        },
                    );
                }
            }
            return;
        }
        self.top.insert(key.to_string(), setting);
    }

    /// `regions:` (names or `{name, values}`), else `region_name` (a list or comma-separated).
    fn regions(&self) -> Result<Vec<Region>> {
        if let Some(s) = self.top.get("regions") {
            let Node::List(items) = &s.value else {
                return err(s.origin.clone(), "must be a list");
            };
            let mut out = Vec::new();
            for item in items {
                match item {
                    Node::Map(m) => {
                        let name = item.get("name").map(Node::key_text);
                        let ok = m.iter().all(|(k, _)| k == "name" || k == "values");
                        let Some(name) = name.filter(|_| ok) else {
                            return err(
                                s.origin.clone(),
                                "invalid region entry (needs `name` and optional `values` only)",
                            );
                        };
                        let mut values = Vec::new();
                        if let Some(Node::Map(vs)) = item.get("values") {
                            for (k, v) in vs {
                                values.push((
                                    k.replace('-', "_"),
                                    Setting {
                                        value: v.clone(),
                                        origin: s.origin.clone(),
                                    },
                                ));
                            }
                        }
                        out.push((name, values));
                    }
                    other => out.push((other.key_text(), Vec::new())),
                }
            }
            return Ok(out);
        }
        if let Some(s) = self.top.get("region_name") {
            let names: Vec<String> = match &s.value {
                Node::List(items) => items.iter().map(Node::key_text).collect(),
                _ => s
                    .string()?
                    .map(|t| t.split(',').map(|r| r.trim().to_string()).collect())
                    .unwrap_or_default(),
            };
            return Ok(names.into_iter().map(|n| (n, Vec::new())).collect());
        }
        Ok(Vec::new())
    }

    /// The region to use: the wanted one (which must be one of the cloud's, if it lists
    /// any), else the cloud's first; that region's `values` are set over the cloud's.
    fn apply_region(
        &mut self,
        wanted_region: Option<String>,
        cloud_name: Option<&str>,
    ) -> Result<Option<String>> {
        let regions = self.regions()?;
        let region_name = match (&wanted_region, regions.is_empty()) {
            (None, true) => None,
            (None, false) => Some(regions[0].0.clone()),
            (Some(r), true) => Some(r.clone()),
            (Some(r), false) => {
                if !regions.iter().any(|(n, _)| n == r) {
                    return err(None, format!(
                        "Region {r} is not a valid region name for cloud {}. Valid choices are {}. Please note that region names are case sensitive.",
                        cloud_name.unwrap_or(""),
                        regions.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(",")
                    ));
                }
                Some(r.clone())
            }
        };
        if let Some(r) = &region_name {
            if let Some((_, values)) = regions.iter().find(|(n, _)| n == r) {
                for (k, v) in values {
                    self.set(k, v.clone());
                }
            }
        }
        Ok(region_name)
    }

    /// openstacksdk's `magic_fixes` and osc-lib's `auth_config_hook`, in their order.
    fn magic_fixes(&mut self) {
        // auth_plugin is the old name of auth_type; auth_type wins.
        if let Some(p) = self.top.remove("auth_plugin") {
            self.top.entry("auth_type".into()).or_insert(p);
        }
        self.move_auth_names();
        // *_endpoint_type is the old name of *_interface.
        let renamed: Vec<String> = self
            .top
            .keys()
            .filter(|k| k.ends_with("endpoint_type"))
            .cloned()
            .collect();
        for k in renamed {
            if let Some(v) = self.top.remove(&k) {
                self.top.insert(k.replace("endpoint_type", "interface"), v);
            }
        }
        self.split_scope_domain();
        self.default_auth_type();
        self.default_password_domains();
    }

    /// Old names, and top-level values over `auth` ones (they hold command-line and
    /// environment overrides).
    fn move_auth_names(&mut self) {
        let mappings: [(&str, &[&str]); 9] = [
            ("domain_id", &["domain_id"]),
            ("domain_name", &["domain_name"]),
            ("user_domain_id", &["user_domain_id"]),
            ("user_domain_name", &["user_domain_name"]),
            ("project_domain_id", &["project_domain_id"]),
            ("project_domain_name", &["project_domain_name"]),
            ("token", &["auth_token", "token"]),
            ("project_id", &["tenant_id", "project_id"]),
            ("project_name", &["tenant_name", "project_name"]),
        ];
        for (target, sources) in mappings {
            let mut winner = None;
            for key in sources {
                if let Some(v) = self.auth.remove(*key) {
                    winner = Some(v);
                }
                if let Some(v) = self.top.remove(*key) {
                    winner = Some(v);
                }
            }
            // openstacksdk keeps the winner only when its text is not empty.
            if let Some(w) = winner {
                let keep = match &w.value {
                    Node::Null => false,
                    Node::Str(s) => !s.is_empty(),
                    _ => true,
                };
                if keep {
                    self.auth.insert(target.to_string(), w);
                }
            }
        }
    }

    /// One domain for user and project when the token is project-scoped; a domain-scoped
    /// token keeps `domain_id` / `domain_name` as its scope.
    fn split_scope_domain(&mut self) {
        let project_scoped = ["project_id", "project_name"]
            .iter()
            .any(|k| self.auth.contains_key(*k) || self.top.contains_key(*k));
        for (target, fills) in [
            ("domain_id", ["user_domain_id", "project_domain_id"]),
            ("domain_name", ["user_domain_name", "project_domain_name"]),
        ] {
            if !project_scoped {
                if let Some(v) = self.top.remove(target) {
                    self.auth.entry(target.into()).or_insert(v);
                }
                continue;
            }
            if let Some(v) = self.auth.get(target).cloned() {
                for f in fills {
                    self.auth.entry(f.into()).or_insert_with(|| v.clone());
                }
            }
            self.top.remove(target);
            self.auth.remove(target);
        }
    }

    /// osc-lib: choose the plugin when none is named.
    fn default_auth_type(&mut self) {
        if !has_text(&self.top, "auth_type") {
            let v3 = self.identity_v3();
            let t = if has_text(&self.top, "username") && v3 {
                "v3password"
            } else {
                "password"
            };
            self.top
                .insert("auth_type".into(), Setting::text(t, CloudOrigin::Default));
        }
    }

    /// osc-lib: the default domain for user and project of the password types.
    fn default_password_domains(&mut self) {
        let auth_type = self
            .top
            .get("auth_type")
            .and_then(|s| s.string().ok().flatten())
            .unwrap_or_default();
        let v3 = self.identity_v3();
        if let Some(dd) = self.top.get("default_domain").cloned() {
            if v3
                && matches!(auth_type.as_str(), "password" | "v3password")
                && dd.string().ok().flatten().is_some()
            {
                for (id, name) in [
                    ("project_domain_id", "project_domain_name"),
                    ("user_domain_id", "user_domain_name"),
                ] {
                    if !has_text(&self.auth, id)
                        && !has_text(&self.auth, name)
                        && !has_text(&self.top, id)
                        && !has_text(&self.top, name)
                    {
                        self.auth.insert(id.into(), dd.clone());
                    }
                }
            }
        }
    }

    /// `identity_api_version` is 3.
    fn identity_v3(&self) -> bool {
        self.top
            .get("identity_api_version")
            .and_then(|s| s.string().ok().flatten())
            .is_some_and(|v| v == "3")
    }

    /// An auth option: the top-level value (command line, environment) before the `auth` one.
    fn auth_opt(&self, key: &str) -> Option<&Setting> {
        let set = |s: &&Setting| !matches!(s.value, Node::Null);
        self.top
            .get(key)
            .filter(set)
            .or_else(|| self.auth.get(key).filter(set))
    }

    fn auth_string(&self, key: &str) -> Result<Option<(String, CloudOrigin)>> {
        match self.auth_opt(key) {
            None => Ok(None),
            Some(s) => Ok(s.string()?.map(|v| (v, s.origin.clone()))),
        }
    }
}

/// A resolved cloud: what to authenticate with and how to reach the services.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// The cloud's name (`envvars` for the environment's, empty when none).
    pub name: String,
    /// The clouds/secure files that were read.
    pub files: Vec<PathBuf>,
    /// What to authenticate with (the plugin's options).
    pub auth: AuthConfig,
    /// The region whose endpoints are used, if any.
    pub region_name: Option<String>,
    /// The catalog interface to call services on (`interface`, default public).
    pub interface: Interface,
    /// CA bundle to trust (`cacert`).
    pub cacert: Option<PathBuf>,
    /// Client certificate (`cert`).
    pub cert: Option<PathBuf>,
    /// Client certificate's key (`key`).
    pub key: Option<PathBuf>,
    /// `insecure: true`, or `verify: false`.
    pub insecure: bool,
    /// `api_timeout` (seconds).
    pub api_timeout: Option<Duration>,
}

impl CloudConfig {
    /// HTTP options for these settings (CA file, client certificate, insecure, timeout).
    pub fn http_options(&self) -> HttpOptions {
        let mut o = HttpOptions {
            insecure: self.insecure,
            ..HttpOptions::default()
        };
        if !self.insecure {
            o.ca_file = self.cacert.clone();
        }
        if let (Some(c), Some(k)) = (&self.cert, &self.key) {
            o.client_cert = Some((c.clone(), k.clone()));
        }
        if let Some(t) = self.api_timeout {
            o.timeout = Some(t);
        }
        o
    }

    /// A new auth plugin for the cloud's credentials.
    pub fn auth_plugin(&self) -> Arc<dyn AuthPlugin> {
        self.auth.plugin()
    }

    /// A session authenticated as the cloud's user.
    pub fn session(&self) -> ClientResult<Session> {
        Session::builder()
            .http_options(self.http_options())
            .build(self.auth_plugin())
    }
}

fn expand_home(path: &str, origin: &CloudOrigin) -> Result<PathBuf> {
    let p = if let Some(rest) = path.strip_prefix("~/") {
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(rest),
            None => return err(origin.clone(), format!("{path}: HOME is not set")),
        }
    } else {
        PathBuf::from(path)
    };
    Ok(p)
}

/// One cloud's auth options: the top level (command line, environment) over its `auth` mapping;
/// errors say which variable, option or clouds.yaml key to set.
struct CloudAuth<'a> {
    entry: &'a CloudEntry,
    name: &'a str,
}

impl OptionSource for CloudAuth<'_> {
    type Origin = CloudOrigin;
    type Error = ConfigError;

    fn name(&self) -> String {
        if self.name.is_empty() {
            "cloud".into()
        } else {
            format!("cloud {}", self.name)
        }
    }

    fn get(&self, option: &str) -> Result<Option<(String, CloudOrigin)>> {
        self.entry.auth_string(option)
    }

    fn error(&self, problem: AuthProblem<CloudOrigin>) -> ConfigError {
        let where_ = if self.name.is_empty() {
            String::new()
        } else {
            format!(" for cloud {}", self.name)
        };
        let missing = |opt: &str, auth_type: AuthType, hint: &str| {
            format!(
                "Missing value {} required for auth plugin {}{where_} ({hint})",
                opt.replace('_', "-"),
                auth_type.as_str()
            )
        };
        let (origin, reason) = match problem {
            AuthProblem::UnknownType { text, origin } => (
                Some(origin),
                format!("auth_type {text:?} is not supported (Baton loads {AUTH_TYPES})"),
            ),
            AuthProblem::Missing { option, auth_type } => {
                let hint = match option {
                    "auth_url" => "set OS_AUTH_URL, --os-auth-url or auth.auth_url in clouds.yaml",
                    "username" => "set OS_USERNAME (with OS_USER_DOMAIN_NAME) or OS_USER_ID",
                    "password" => "set OS_PASSWORD, --os-password or auth.password (secure.yaml)",
                    "token" => "set OS_TOKEN, --os-token or auth.token",
                    "application_credential_secret" => "set OS_APPLICATION_CREDENTIAL_SECRET",
                    _ => "set OS_APPLICATION_CREDENTIAL_ID",
                };
                (None, missing(option, auth_type, hint))
            }
            AuthProblem::MissingOwner { auth_type, .. } => (
                None,
                missing(
                    "username",
                    auth_type,
                    "an application credential by name needs its user (OS_USERNAME or OS_USER_ID)",
                ),
            ),
            AuthProblem::NotUrl {
                text,
                origin,
                reason,
            } => (Some(origin), format!("{text:?} is not a URL: {reason}")),
            AuthProblem::NotHttp { text, origin } => (
                Some(origin),
                format!("{text:?} must be an http:// or https:// URL"),
            ),
            AuthProblem::UserDomain {
                username, origin, ..
            } => (
                Some(origin),
                format!("username {username:?} needs a user domain (OS_USER_DOMAIN_NAME, --os-user-domain-name or auth.user_domain_name)"),
            ),
            AuthProblem::ProjectDomain { name, origin } => (
                Some(origin),
                format!("project name {name:?} needs a project domain (OS_PROJECT_DOMAIN_NAME, --os-project-domain-name or auth.project_domain_name)"),
            ),
            AuthProblem::SystemScope { value, origin } => (
                Some(origin),
                format!("system scope {value:?}: the only system scope is `all`"),
            ),
            // `project_id` sets the project scope, `domain_name` the domain scope, ...
            AuthProblem::Scopes { options } => (
                None,
                format!(
                    "Authentication cannot be scoped to multiple targets{where_}: {} are all set; pick one",
                    options
                        .iter()
                        .map(|o| o.split('_').next().unwrap_or(o))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            AuthProblem::ScopeWithApplicationCredential { option, origin } => (
                Some(origin),
                format!("an application credential carries its own scope; remove {option}"),
            ),
        };
        ConfigError::cloud(origin, reason)
    }

    fn rejects_scope_with_application_credential(&self) -> bool {
        false
    }
}

fn resolve(
    name: String,
    files: Vec<PathBuf>,
    region_name: Option<String>,
    entry: CloudEntry,
) -> Result<CloudConfig> {
    let auth_type = entry
        .top
        .get("auth_type")
        .and_then(|s| s.string().ok().flatten().map(|t| (t, s.origin.clone())))
        .unwrap_or_else(|| ("password".into(), CloudOrigin::Default));
    let auth = AuthConfig::resolve(
        &CloudAuth {
            entry: &entry,
            name: &name,
        },
        auth_type,
    )?;

    let top_string = |k: &str| -> Result<Option<(String, CloudOrigin)>> {
        match entry.top.get(k) {
            None => Ok(None),
            Some(s) => Ok(s.string()?.map(|v| (v, s.origin.clone()))),
        }
    };
    let interface = match top_string("interface")? {
        None => Interface::Public,
        Some((i, origin)) => Interface::parse(&i).ok_or_else(|| {
            ConfigError::cloud(
                origin,
                format!("interface {i:?} is not one of public, internal, admin"),
            )
        })?,
    };
    let path = |k: &str| -> Result<Option<PathBuf>> {
        match top_string(k)? {
            None => Ok(None),
            Some((p, origin)) => Ok(Some(expand_home(&p, &origin)?)),
        }
    };
    let insecure = entry.top.get("insecure").is_some_and(Setting::boolean)
        || entry.top.get("verify").is_some_and(|v| match &v.value {
            Node::Bool(b) => !b,
            Node::Str(s) => matches!(s.to_ascii_lowercase().as_str(), "false" | "0" | "no"),
            _ => false,
        });
    let api_timeout = match entry.top.get("api_timeout") {
        None => None,
        Some(s) => match s.string()? {
            None => None,
            Some(t) => {
                let secs: f64 = t.parse().map_err(|_| {
                    ConfigError::cloud(
                        s.origin.clone(),
                        format!("{t:?} is not a number of seconds"),
                    )
                })?;
                (secs > 0.0).then(|| Duration::from_secs_f64(secs))
            }
        },
    };
    Ok(CloudConfig {
        auth,
        name,
        files,
        region_name,
        interface,
        cacert: path("cacert")?,
        cert: path("cert")?,
        key: path("key")?,
        insecure,
        api_timeout,
    })
}

/// The auth option names this loader reads (for CLIs that offer `--os-<name>` flags).
pub fn auth_option_names() -> &'static [&'static str] {
    &AUTH_OPTIONS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credentials;
    use crate::plugin::{AppCredRef, DomainRef, Scope, UserRef};

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn loader(env: &[(&str, &str)], dirs: &[&Path]) -> CloudLoader {
        CloudLoader::new(env.iter().map(|(k, v)| (*k, *v)), None)
            .search_path(dirs.iter().map(|d| d.to_path_buf()).collect())
    }

    const CLOUDS: &str = "clouds:\n  prod:\n    auth:\n      auth_url: http://ks:5000/v3\n      username: alice\n      project_name: demo\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n    interface: internal\n  other:\n    auth:\n      auth_url: http://other:5000\n      username: bob\n      password: bobpw\n    regions:\n      - R1\n      - name: R2\n        values:\n          interface: admin\n";

    fn user_name(c: &CloudConfig) -> (String, DomainRef) {
        match &c.auth.credentials {
            Credentials::Password {
                user: UserRef::Name { name, domain },
                ..
            } => (name.clone(), domain.clone()),
            other => panic!("{other:?}"),
        }
    }

    fn password(c: &CloudConfig) -> String {
        match &c.auth.credentials {
            Credentials::Password { password, .. } => password.expose().to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn env_only_cloud() {
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks:5000/v3"),
                ("OS_USERNAME", "admin"),
                ("OS_PASSWORD", "pw"),
                ("OS_PROJECT_NAME", "admin"),
                ("OS_USER_DOMAIN_NAME", "Default"),
                ("OS_PROJECT_DOMAIN_NAME", "Default"),
                ("OS_REGION_NAME", "RegionOne"),
                ("OS_INTERFACE", "internal"),
                ("OS_INSECURE", "True"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert_eq!(c.name, "envvars");
        assert_eq!(c.auth.auth_type, AuthType::V3Password);
        assert_eq!(
            user_name(&c),
            ("admin".into(), DomainRef::Name("Default".into()))
        );
        assert_eq!(password(&c), "pw");
        assert_eq!(
            c.auth.scope,
            Scope::project_name("admin", DomainRef::Name("Default".into()))
        );
        assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(c.interface, Interface::Internal);
        assert!(c.insecure, "OS_INSECURE=True through the envvars cloud");
    }

    #[test]
    fn default_domain_and_domain_name_fix_ups() {
        // No domains at all: osc-lib puts OS_DEFAULT_DOMAIN ("default") in both.
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_USERNAME", "u"),
                ("OS_PASSWORD", "p"),
                ("OS_PROJECT_NAME", "demo"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert_eq!(user_name(&c).1, DomainRef::Id("default".into()));
        assert_eq!(
            c.auth.scope,
            Scope::project_name("demo", DomainRef::Id("default".into()))
        );
        // OS_DOMAIN_NAME with a project fills both domains and is no scope of its own.
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_USERNAME", "u"),
                ("OS_PASSWORD", "p"),
                ("OS_PROJECT_NAME", "demo"),
                ("OS_DOMAIN_NAME", "Dom"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert_eq!(user_name(&c).1, DomainRef::Name("Dom".into()));
        assert_eq!(
            c.auth.scope,
            Scope::project_name("demo", DomainRef::Name("Dom".into()))
        );
        // Without a project it is the scope.
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_USERNAME", "u"),
                ("OS_PASSWORD", "p"),
                ("OS_USER_DOMAIN_NAME", "Default"),
                ("OS_DOMAIN_NAME", "Dom"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert_eq!(c.auth.scope, Scope::domain_name("Dom"));
        // System scope; the old tenant names.
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_USER_ID", "uid"),
                ("OS_PASSWORD", "p"),
                ("OS_SYSTEM_SCOPE", "all"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert_eq!(c.auth.scope, Scope::System);
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_USER_ID", "uid"),
                ("OS_PASSWORD", "p"),
                ("OS_TENANT_ID", "pid"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert_eq!(c.auth.scope, Scope::project_id("pid"));
    }

    #[test]
    fn clouds_yaml_secure_yaml_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "clouds.yaml", CLOUDS);
        write(
            dir.path(),
            "secure.yaml",
            "clouds:\n  prod:\n    auth:\n      password: s3cure\n",
        );
        let c = loader(&[("OS_CLOUD", "prod")], &[dir.path()])
            .load()
            .unwrap();
        assert_eq!(c.name, "prod");
        assert_eq!(password(&c), "s3cure", "secure.yaml merged");
        assert_eq!(c.auth.auth_url.as_str(), "http://ks:5000/v3");
        assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(c.interface, Interface::Internal);
        assert_eq!(c.files.len(), 2);
        // clouds.yaml's auth keys without auth_type: generic password (no top-level username).
        assert_eq!(c.auth.auth_type, AuthType::Password);

        // Environment over the file, command line over the environment.
        let c = loader(
            &[
                ("OS_CLOUD", "prod"),
                ("OS_PROJECT_NAME", "fromenv"),
                ("OS_PASSWORD", "envpw"),
                ("OS_INTERFACE", "admin"),
            ],
            &[dir.path()],
        )
        .arg("password", "--os-password", "argpw")
        .load()
        .unwrap();
        assert_eq!(password(&c), "argpw");
        assert_eq!(
            c.auth.scope,
            Scope::project_name("fromenv", DomainRef::Name("Default".into()))
        );
        assert_eq!(c.interface, Interface::Admin);

        // --os-cloud over OS_CLOUD; regions list; region values.
        let c = loader(&[("OS_CLOUD", "prod")], &[dir.path()])
            .arg("cloud", "--os-cloud", "other")
            .arg("region_name", "--os-region-name", "R2")
            .load()
            .unwrap();
        assert_eq!(c.name, "other");
        assert_eq!(c.region_name.as_deref(), Some("R2"));
        assert_eq!(c.interface, Interface::Admin);
        let c = loader(&[("OS_CLOUD", "other")], &[dir.path()])
            .load()
            .unwrap();
        assert_eq!(c.region_name.as_deref(), Some("R1"), "first region");
        // osc-lib's default domain for a cloud without domains.
        assert_eq!(user_name(&c).1, DomainRef::Id("default".into()));

        let e = loader(&[("OS_CLOUD", "other")], &[dir.path()])
            .arg("region_name", "--os-region-name", "R9")
            .load()
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "Region R9 is not a valid region name for cloud other. Valid choices are R1,R2"
            ),
            "{e}"
        );
        let e = loader(&[("OS_CLOUD", "nope")], &[dir.path()])
            .load()
            .unwrap_err();
        assert!(
            e.to_string().starts_with("Cloud nope was not found")
                && e.to_string().contains("prod, other"),
            "{e}"
        );
        assert!(!e.to_string().contains("s3cure"));
    }

    #[test]
    fn only_cloud_is_the_default_and_env_cloud_wins_when_no_os_cloud() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "clouds.yml",
            "clouds:\n  solo:\n    auth_type: v3password\n    auth:\n      auth_url: https://solo/v3\n      user_id: u1\n      password: p\n    verify: false\n    api_timeout: 7\n",
        );
        let c = loader(&[], &[dir.path()]).load().unwrap();
        assert_eq!(c.name, "solo");
        assert!(c.insecure, "verify: false");
        assert_eq!(c.api_timeout, Some(Duration::from_secs(7)));
        // OS_* beyond selectors make the envvars cloud, which is then the default.
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://env/v3"),
                ("OS_USER_ID", "u2"),
                ("OS_PASSWORD", "p"),
            ],
            &[dir.path()],
        )
        .load()
        .unwrap();
        assert_eq!(c.name, "envvars");
        assert_eq!(c.auth.auth_url.as_str(), "http://env/v3");
        // OS_CLIENT_CONFIG_FILE comes first.
        let other = write(
            dir.path(),
            "elsewhere.json",
            r#"{"clouds": {"j": {"auth": {"auth_url": "http://json/v3", "user_id": "u", "password": "p"}}}}"#,
        );
        let c = loader(
            &[("OS_CLIENT_CONFIG_FILE", other.to_str().unwrap())],
            &[dir.path()],
        )
        .load()
        .unwrap();
        assert_eq!(c.name, "j");
    }

    #[test]
    fn other_auth_types() {
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_AUTH_TYPE", "v3token"),
                ("OS_TOKEN", "gAAAA-tok"),
                ("OS_PROJECT_ID", "p1"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert_eq!(c.auth.auth_type, AuthType::V3Token);
        assert!(matches!(c.auth.credentials, Credentials::Token { .. }));
        assert_eq!(c.auth.scope, Scope::project_id("p1"));
        assert!(!format!("{c:?}").contains("gAAAA-tok"));
        let c = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_AUTH_TYPE", "v3applicationcredential"),
                ("OS_APPLICATION_CREDENTIAL_ID", "ac1"),
                ("OS_APPLICATION_CREDENTIAL_SECRET", "sec"),
            ],
            &[],
        )
        .load()
        .unwrap();
        assert!(matches!(
            c.auth.credentials,
            Credentials::ApplicationCredential {
                credential: AppCredRef::Id(_),
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_file_key_or_variable() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "clouds.yaml",
            "clouds:\n  bad:\n    auth:\n      auth_url: ks:5000\n      username: u\n      password: hunter2\n  typo:\n    auth_type: kerberos\n    auth:\n      auth_url: http://ks/v3\n",
        );
        let one_line = |e: &ConfigError| {
            assert!(!e.to_string().contains('\n'), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        };
        let e = loader(&[("OS_CLOUD", "bad")], &[dir.path()])
            .load()
            .unwrap_err();
        one_line(&e);
        assert!(
            e.to_string()
                .contains("clouds.yaml: clouds.bad.auth.auth_url")
                && e.to_string().contains("http"),
            "{e}"
        );
        let e = loader(&[("OS_CLOUD", "typo")], &[dir.path()])
            .load()
            .unwrap_err();
        one_line(&e);
        assert!(
            e.to_string().contains("clouds.typo.auth_type") && e.to_string().contains("kerberos"),
            "{e}"
        );
        let e = loader(&[("OS_USERNAME", "u"), ("OS_PASSWORD", "hunter2")], &[])
            .load()
            .unwrap_err();
        one_line(&e);
        assert!(e.to_string().contains("Missing value auth-url"), "{e}");
        let e = loader(
            &[("OS_AUTH_URL", "http://ks/v3"), ("OS_USERNAME", "u")],
            &[],
        )
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("Missing value password"), "{e}");
        let e = loader(
            &[
                ("OS_AUTH_URL", "http://ks/v3"),
                ("OS_USER_ID", "u"),
                ("OS_PASSWORD", "hunter2"),
                ("OS_PROJECT_ID", "p"),
                ("OS_SYSTEM_SCOPE", "all"),
            ],
            &[],
        )
        .load()
        .unwrap_err();
        assert!(e.to_string().contains("multiple targets"), "{e}");
        let e = loader(&[("OS_AUTH_URL", "::")], &[])
            .arg("username", "--os-username", "u")
            .load()
            .unwrap_err();
        assert!(
            e.to_string().contains("environment variable OS_AUTH_URL"),
            "{e}"
        );
        let bad = tempfile::tempdir().unwrap();
        write(bad.path(), "clouds.yaml", "clouds: [unclosed\n");
        let e = loader(&[], &[bad.path()]).load().unwrap_err();
        one_line(&e);
        assert!(e.to_string().contains("clouds.yaml: not valid YAML"), "{e}");
    }
}
