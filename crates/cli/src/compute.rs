//! The aws-style compute verbs (`nuage run-instances ...`), with the names
//! and flags of `aws ec2 ...` so that users moving between the two relearn
//! nothing. They call the native API (`/nuage/v1/instances`, ...), not the
//! EC2 query API.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::{items, Client};
use crate::output::{self, Col, Format};
use crate::shorthand::{
    parse_count, parse_instance_filters, parse_placement, parse_tag_spec, parse_user_data, Count,
    Filters, Placement, TagSpec, UserData,
};
use crate::{images, instance_type, keypairs, wait, Ctx};

/// The verbs, flattened into the top level of `nuage`.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Launch instances (as `aws ec2 run-instances`)
    RunInstances(Box<RunInstances>),
    /// List instances, filtered (as `aws ec2 describe-instances`)
    DescribeInstances(DescribeInstances),
    /// Stop instances
    StopInstances {
        #[command(flatten)]
        ids: InstanceIds,
        /// Kill the instances at once instead of shutting them down cleanly
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Start stopped instances
    StartInstances {
        #[command(flatten)]
        ids: InstanceIds,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Reboot instances
    RebootInstances {
        #[command(flatten)]
        ids: InstanceIds,
    },
    /// Terminate instances (they stay listed as terminated for about an hour)
    TerminateInstances {
        #[command(flatten)]
        ids: InstanceIds,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Print the end of an instance's console (its init's output)
    GetConsoleOutput {
        /// The instance's id
        #[arg(long)]
        instance_id: String,
        /// Accepted for aws compatibility: the output is always the latest
        #[arg(long)]
        latest: bool,
    },
    /// List images (as `aws ec2 describe-images`; also `nuage image list`)
    DescribeImages(images::DescribeImages),
    /// A new image of a running or stopped instance's root disk (as `aws
    /// ec2 create-image`); prints its id while it is still being made
    CreateImage {
        /// The instance whose root disk becomes the image
        #[arg(long)]
        instance_id: String,
        /// The image's name, unique in the project
        #[arg(long)]
        name: String,
        /// A description shown with the image
        #[arg(long)]
        description: Option<String>,
        /// Accepted for aws compatibility: nuage never reboots the instance
        /// (a running one is frozen for the copy)
        #[arg(long)]
        no_reboot: bool,
        /// Block until the image is active; exit 1 if it could not be made
        #[arg(long)]
        wait: bool,
    },
    /// List instance types
    DescribeInstanceTypes {
        /// Only these types (an unknown one is an error)
        #[arg(long, num_args = 1.., value_name = "TYPE")]
        instance_types: Vec<String>,
    },
    /// List availability zones
    DescribeAvailabilityZones {
        /// Only these zones
        #[arg(long, num_args = 1.., value_name = "ZONE")]
        zone_names: Vec<String>,
    },
    /// List regions
    DescribeRegions {
        /// Only these regions
        #[arg(long, num_args = 1.., value_name = "REGION")]
        region_names: Vec<String>,
    },
    /// Create a key pair; prints its private key, which is shown only once
    CreateKeyPair(keypairs::Create),
    /// Import an OpenSSH public key as a key pair
    ImportKeyPair(keypairs::Import),
    /// Delete a key pair
    DeleteKeyPair {
        /// The key pair's name
        #[arg(long)]
        key_name: String,
    },
    /// List key pairs
    DescribeKeyPairs {
        /// Only these key pairs (an unknown one is an error)
        #[arg(long, num_args = 1.., value_name = "NAME")]
        key_names: Vec<String>,
    },
}

async fn create_image(
    ctx: &mut Ctx,
    instance_id: &str,
    name: String,
    description: Option<String>,
    wait: bool,
) -> Result<()> {
    let mut body = json!({ "name": name });
    if let Some(d) = description {
        body["description"] = json!(d);
    }
    let mut image = ctx
        .client
        .post(&["instances", instance_id, "image"], &body)
        .await?;
    let id = image["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the answer names no image id: {image}"))?
        .to_string();
    if wait {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
        while image["status"] == "snapshotting" {
            if tokio::time::Instant::now() >= deadline {
                bail!("image {id} is still being made after 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            image = ctx.client.get(&["images", &id], &[]).await?;
        }
        if image["status"] != "active" {
            bail!("image {id} could not be made (status {})", image["status"]);
        }
    }
    if ctx.format == Format::Json {
        output::json(&image);
    } else {
        println!("{id}");
    }
    Ok(())
}

/// `--instance-ids i-1 i-2 ...`
#[derive(Debug, Args)]
pub struct InstanceIds {
    /// Instance ids
    #[arg(long, num_args = 1.., required = true, value_name = "ID")]
    instance_ids: Vec<String>,
}

/// `--wait [--wait-timeout S]`
#[derive(Debug, Clone, Copy, Args)]
pub struct WaitArgs {
    /// Block until every instance reaches the command's end state (running,
    /// stopped, terminated); exit 1 if one ends in another state
    #[arg(long)]
    wait: bool,
    /// With --wait: fail after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300, requires = "wait")]
    wait_timeout: u64,
}

impl WaitArgs {
    /// Waits when asked to; `None` when not.
    async fn run(
        self,
        client: &Client,
        ids: &[String],
        target: &str,
    ) -> Option<(wait::Reached, Result<()>)> {
        if !self.wait {
            return None;
        }
        Some(wait::wait_for(client, ids, target, Duration::from_secs(self.wait_timeout)).await)
    }
}

#[derive(Debug, Args)]
pub struct RunInstances {
    /// Image id (ami-...) or name
    #[arg(long, value_name = "IMAGE")]
    image_id: String,
    /// Instance type, e.g. t2.micro (see describe-instance-types)
    #[arg(long, value_name = "TYPE")]
    instance_type: String,
    /// How many: N, or MIN:MAX for at least MIN and up to MAX as room allows
    #[arg(long, default_value = "1", value_parser = parse_count)]
    count: Count,
    /// Key pair whose public key the instance authorizes
    #[arg(long, value_name = "NAME")]
    key_name: Option<String>,
    /// Data for the instance's init: file://PATH, fileb://PATH or the text
    /// itself (at most 16 KiB)
    #[arg(long, value_name = "DATA", value_parser = parse_user_data)]
    user_data: Option<UserData>,
    /// Tags: 'ResourceType=instance,Tags=[{Key=Name,Value=web},{Key=env,Value=prod}]'
    #[arg(long, num_args = 1.., value_name = "SPEC", value_parser = parse_tag_spec)]
    tag_specifications: Vec<TagSpec>,
    /// Where: AvailabilityZone=ZONE,GroupName=PLACEMENT_GROUP
    #[arg(long, value_name = "SPEC", value_parser = parse_placement)]
    placement: Option<Placement>,
    /// Makes the request idempotent: a retry with the same token launches nothing new
    #[arg(long, value_name = "TOKEN")]
    client_token: Option<String>,
    /// The subnet the instances' addresses come from (subnet-...); the
    /// project's default network when absent
    #[arg(long, value_name = "ID")]
    subnet_id: Option<String>,
    /// The security groups of the instances' ports (sg-...); the project's
    /// default group when absent
    #[arg(long, num_args = 1.., value_name = "ID")]
    security_group_ids: Vec<String>,
    /// The instance's private address (one instance only)
    #[arg(long, value_name = "ADDRESS")]
    private_ip_address: Option<String>,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct DescribeInstances {
    /// Only these instances
    #[arg(long, num_args = 1.., value_name = "ID")]
    instance_ids: Vec<String>,
    /// Name=FILTER,Values=V1,V2 ... with FILTER one of instance-state-name,
    /// instance-type, image-id, availability-zone, instance-id, tag-key,
    /// tag:KEY
    #[arg(long, num_args = 1.., value_name = "FILTER", value_parser = parse_instance_filters)]
    filters: Vec<Filters>,
    /// Show at most N instances, then the token to continue from
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_items: Option<u32>,
    /// Continue a listing cut by --max-items
    #[arg(long, value_name = "TOKEN")]
    starting_token: Option<String>,
}

/// The largest page asked for at once.
const PAGE: u32 = 1000;

/// Whether `s` is an image id rather than a name.
fn is_image_id(s: &str) -> bool {
    s.strip_prefix("ami-")
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The body of `POST /instances`; `image_id` already resolved.
fn run_body(r: &RunInstances, image_id: &str) -> Value {
    let mut b = Map::new();
    b.insert("image_id".into(), json!(image_id));
    b.insert("instance_type".into(), json!(r.instance_type));
    b.insert("min_count".into(), json!(r.count.min));
    b.insert("max_count".into(), json!(r.count.max));
    if let Some(k) = &r.key_name {
        b.insert("key_name".into(), json!(k));
    }
    if let Some(d) = &r.user_data {
        b.insert("user_data".into(), json!(d.0));
    }
    let tags: Map<String, Value> = r
        .tag_specifications
        .iter()
        .flat_map(|s| &s.0)
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if !tags.is_empty() {
        b.insert("tags".into(), Value::Object(tags));
    }
    if let Some(p) = &r.placement {
        if let Some(z) = &p.availability_zone {
            b.insert("availability_zone".into(), json!(z));
        }
        if let Some(g) = &p.group_name {
            b.insert("placement_group".into(), json!(g));
        }
    }
    if let Some(t) = &r.client_token {
        b.insert("client_token".into(), json!(t));
    }
    if let Some(s) = &r.subnet_id {
        b.insert("subnet_id".into(), json!(s));
    }
    if !r.security_group_ids.is_empty() {
        b.insert("security_groups".into(), json!(r.security_group_ids));
    }
    if let Some(a) = &r.private_ip_address {
        b.insert("private_ip_address".into(), json!(a));
    }
    Value::Object(b)
}

/// The instance table's columns.
pub fn instance_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("ID", "id"),
        Col::with("Name", |r| output::cell(&r["tags"]["Name"])),
        Col::field("State", "state"),
        Col::field("Type", "instance_type"),
        Col::field("Image", "image_id"),
        Col::field("Zone", "availability_zone"),
        Col::field("Node", "node"),
        Col::with("Launched", |r| output::time_cell(&r["launch_time"])),
    ]
}

/// A state as the server gives it: a name, or EC2's `{"code","name"}`.
fn state_cell(v: &Value) -> String {
    match v {
        Value::Object(_) => output::cell(&v["name"]),
        other => output::cell(other),
    }
}

fn state_change_columns() -> Vec<Col<'static>> {
    vec![
        Col::field("Instance", "instance_id"),
        Col::with("Previous", |r| state_cell(&r["previous_state"])),
        Col::with("Current", |r| state_cell(&r["current_state"])),
    ]
}

fn ids_of(rows: &[Value], key: &str) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r[key].as_str().map(str::to_string))
        .collect()
}

async fn run_instances(r: RunInstances, ctx: &Ctx) -> Result<()> {
    let image = if is_image_id(&r.image_id) {
        r.image_id.clone()
    } else {
        // The body takes an id; names are resolved as paths resolve them.
        let v = ctx.client.get(&["images", &r.image_id], &[]).await?;
        v["id"]
            .as_str()
            .ok_or_else(|| anyhow!("the server's image {} has no id", r.image_id))?
            .to_string()
    };
    let v = ctx
        .client
        .post(&["instances"], &run_body(&r, &image))
        .await?;
    let mut v = v;
    let ids = ids_of(items(&v), "id");
    // With --wait the answer shows the state reached, not the one before.
    let waited = r.wait.run(&ctx.client, &ids, "running").await;
    if let (Some((reached, _)), Some(rows)) = (&waited, v["items"].as_array_mut()) {
        for row in rows {
            let id = row["id"].as_str().unwrap_or_default().to_string();
            if let Some(Some(now)) = reached.get(&id) {
                *row = now.clone();
            }
        }
    }
    output::list(ctx.format, &v, items(&v), &instance_columns());
    waited.map_or(Ok(()), |(_, result)| result)
}

async fn describe_instances(d: DescribeInstances, ctx: &Ctx) -> Result<()> {
    let filters: Vec<_> = d.filters.into_iter().flat_map(|f| f.0).collect();
    let mut all = Vec::new();
    let mut token = d.starting_token;
    if let Some(query) = crate::shorthand::instance_query(&d.instance_ids, &filters) {
        loop {
            let mut q: Vec<(&str, String)> =
                query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            if let Some(max) = d.max_items {
                let left = max.saturating_sub(u32::try_from(all.len()).unwrap_or(u32::MAX));
                q.push(("max_results", left.min(PAGE).to_string()));
            }
            if let Some(t) = &token {
                q.push(("next_token", t.clone()));
            }
            let v = ctx.client.get(&["instances"], &q).await?;
            all.extend(items(&v).iter().cloned());
            let next = v["next_token"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if next.is_some() && next == token {
                bail!("the server gave the same next_token twice; stopping the listing");
            }
            token = next;
            let full = d
                .max_items
                .is_some_and(|m| all.len() >= usize::try_from(m).unwrap_or(usize::MAX));
            if token.is_none() || full {
                break;
            }
        }
    } else {
        // Filters that contradict each other: nothing can match.
        token = None;
    }
    let mut answer = json!({ "items": all });
    if let Some(t) = &token {
        answer["next_token"] = json!(t);
    }
    output::list(ctx.format, &answer, items(&answer), &instance_columns());
    if let (Some(t), Format::Table) = (&token, ctx.format) {
        eprintln!("There are more: add --starting-token {t}");
    }
    Ok(())
}

async fn change_state(
    ctx: &Ctx,
    action: &str,
    ids: InstanceIds,
    force: bool,
    wait: Option<(WaitArgs, &str)>,
) -> Result<()> {
    let mut body = json!({ "instance_ids": ids.instance_ids });
    if force {
        body["force"] = json!(true);
    }
    let mut v = ctx.client.post(&["instances", action], &body).await?;
    let mut result = Ok(());
    if let Some((w, target)) = wait {
        let mut changed = ids_of(items(&v), "instance_id");
        if changed.is_empty() {
            changed = ids.instance_ids;
        }
        // With --wait the answer shows the state reached, not the one before.
        if let Some((reached, waited)) = w.run(&ctx.client, &changed, target).await {
            for row in v["items"].as_array_mut().into_iter().flatten() {
                let id = row["instance_id"].as_str().unwrap_or_default();
                if reached.contains_key(id) {
                    row["current_state"] = json!(target);
                }
            }
            result = waited;
        }
    }
    output::list(ctx.format, &v, items(&v), &state_change_columns());
    result
}

/// Keeps the rows whose `key` is among `wanted` (all when none are), and
/// names any wanted that none has.
fn only(rows: &[Value], key: &str, wanted: &[String], what: &str) -> Result<Vec<Value>> {
    if wanted.is_empty() {
        return Ok(rows.to_vec());
    }
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|w| !rows.iter().any(|r| r[key].as_str() == Some(w.as_str())))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!("no such {what}: {}", missing.join(", "));
    }
    Ok(rows
        .iter()
        .filter(|r| {
            r[key]
                .as_str()
                .is_some_and(|n| wanted.iter().any(|w| w == n))
        })
        .cloned()
        .collect())
}

async fn describe_named(
    ctx: &Ctx,
    collection: &str,
    wanted: &[String],
    what: &str,
    cols: &[Col<'_>],
) -> Result<()> {
    let v = ctx.client.get(&[collection], &[]).await?;
    let rows = only(items(&v), "name", wanted, what)?;
    let answer = if wanted.is_empty() {
        v
    } else {
        json!({ "items": rows })
    };
    output::list(ctx.format, &answer, items(&answer), cols);
    Ok(())
}

pub async fn run(verb: Verb, ctx: &mut Ctx) -> Result<()> {
    match verb {
        Verb::RunInstances(r) => run_instances(*r, ctx).await,
        Verb::DescribeInstances(d) => describe_instances(d, ctx).await,
        Verb::StopInstances { ids, force, wait } => {
            change_state(ctx, "stop", ids, force, Some((wait, "stopped"))).await
        }
        Verb::StartInstances { ids, wait } => {
            change_state(ctx, "start", ids, false, Some((wait, "running"))).await
        }
        Verb::RebootInstances { ids } => change_state(ctx, "reboot", ids, false, None).await,
        Verb::TerminateInstances { ids, wait } => {
            change_state(ctx, "terminate", ids, false, Some((wait, "terminated"))).await
        }
        Verb::GetConsoleOutput {
            instance_id,
            latest: _,
        } => {
            let v = ctx
                .client
                .get(&["instances", &instance_id, "console"], &[])
                .await?;
            if ctx.format == Format::Json {
                output::json(&v);
            } else {
                let text = v["output"].as_str().unwrap_or_default();
                print!("{text}");
                if !text.is_empty() && !text.ends_with('\n') {
                    println!();
                }
            }
            Ok(())
        }
        Verb::DescribeImages(d) => images::describe(d, ctx).await,
        Verb::CreateImage {
            instance_id,
            name,
            description,
            no_reboot: _,
            wait,
        } => create_image(ctx, &instance_id, name, description, wait).await,
        Verb::DescribeInstanceTypes { instance_types } => {
            describe_named(
                ctx,
                "instance-types",
                &instance_types,
                "instance type",
                &instance_type::columns(),
            )
            .await
        }
        Verb::DescribeAvailabilityZones { zone_names } => {
            let cols = [
                Col::field("Name", "name"),
                Col::field("State", "state"),
                Col::field("Region", "region"),
            ];
            describe_named(
                ctx,
                "availability-zones",
                &zone_names,
                "availability zone",
                &cols,
            )
            .await
        }
        Verb::DescribeRegions { region_names } => {
            let cols = [
                Col::field("Name", "name"),
                Col::field("Endpoint", "endpoint"),
            ];
            describe_named(ctx, "regions", &region_names, "region", &cols).await
        }
        Verb::CreateKeyPair(c) => keypairs::create(c, ctx).await,
        Verb::ImportKeyPair(i) => keypairs::import(i, ctx).await,
        Verb::DeleteKeyPair { key_name } => ctx.client.delete(&["key-pairs", &key_name]).await,
        Verb::DescribeKeyPairs { key_names } => keypairs::describe(&key_names, ctx).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        verb: Verb,
    }

    fn parse(args: &[&str]) -> Result<Verb, clap::Error> {
        T::try_parse_from(std::iter::once("nuage").chain(args.iter().copied())).map(|t| t.verb)
    }

    #[test]
    fn run_instances_body() {
        let Verb::RunInstances(r) = parse(&[
            "run-instances",
            "--image-id",
            "debian",
            "--instance-type",
            "t2.nano",
            "--count",
            "2:5",
            "--key-name",
            "me",
            "--user-data",
            "echo hi",
            "--tag-specifications",
            "ResourceType=instance,Tags=[{Key=Name,Value=web},{Key=env,Value=prod}]",
            "--placement",
            "AvailabilityZone=nova-b,GroupName=g",
            "--client-token",
            "tok",
            "--subnet-id",
            "subnet-1",
            "--security-group-ids",
            "sg-1",
            "sg-2",
        ])
        .expect("parses") else {
            panic!("not run-instances");
        };
        assert_eq!(
            run_body(&r, "ami-0123456789abcdef0"),
            json!({
                "image_id": "ami-0123456789abcdef0", "instance_type": "t2.nano",
                "min_count": 2, "max_count": 5, "key_name": "me", "user_data": "ZWNobyBoaQ==",
                "tags": {"Name": "web", "env": "prod"},
                "availability_zone": "nova-b", "placement_group": "g", "client_token": "tok",
                "subnet_id": "subnet-1", "security_groups": ["sg-1", "sg-2"]
            })
        );
        assert!(!r.wait.wait);

        let Verb::RunInstances(r) = parse(&[
            "run-instances",
            "--image-id",
            "ami-1",
            "--instance-type",
            "t2.nano",
            "--wait",
            "--wait-timeout",
            "20",
        ])
        .expect("parses") else {
            panic!("not run-instances");
        };
        assert_eq!(
            run_body(&r, "ami-1"),
            json!({"image_id": "ami-1", "instance_type": "t2.nano", "min_count": 1, "max_count": 1})
        );
        assert!(r.wait.wait && r.wait.wait_timeout == 20);
    }

    #[test]
    fn usage_errors_are_caught_while_parsing() {
        let base = ["run-instances", "--image-id", "x", "--instance-type", "t"];
        let with = |extra: &[&str]| {
            let mut a = base.to_vec();
            a.extend_from_slice(extra);
            parse(&a).expect_err("refused")
        };
        let e = with(&["--count", "5:2"]);
        assert_eq!(e.exit_code(), 2);
        let e = with(&["--wait-timeout", "5"]);
        assert!(e.to_string().contains("--wait"), "{e}");
        let e = with(&["--user-data", "file:///nonexistent/user-data"]);
        assert!(e.to_string().contains("cannot read"), "{e}");
        let e = with(&["--user-data", &"x".repeat(16 * 1024 + 1)]);
        assert!(e.to_string().contains("at most 16384 bytes"), "{e}");
        let e = parse(&["describe-instances", "--filters", "Name=vpc-id,Values=v"])
            .expect_err("unknown filter");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unknown filter name"), "{e}");
        assert!(parse(&["stop-instances"]).is_err());
        assert!(parse(&["reboot-instances", "--instance-ids", "i-1", "--wait"]).is_err());
    }

    #[test]
    fn describe_takes_several_filters_and_ids() {
        let Verb::DescribeInstances(d) = parse(&[
            "describe-instances",
            "--instance-ids",
            "i-1",
            "i-2",
            "--filters",
            "Name=instance-state-name,Values=running,stopped",
            "Name=tag:Name,Values=web",
            "--max-items",
            "10",
        ])
        .expect("parses") else {
            panic!("not describe-instances");
        };
        assert_eq!(d.instance_ids, ["i-1", "i-2"]);
        assert_eq!(d.filters.len(), 2);
        assert_eq!(d.max_items, Some(10));
    }

    #[test]
    fn image_ids_are_told_from_names() {
        assert!(is_image_id("ami-0123456789abcdef0"));
        assert!(!is_image_id("ami-"));
        assert!(!is_image_id("debian"));
        assert!(!is_image_id("ami-linux"));
    }

    #[test]
    fn instance_table() {
        let answer = json!({"items": [
            {"id": "i-0a1b", "reservation_id": "r-1", "image_id": "ami-00ff", "instance_type": "t2.nano",
             "state": "running", "state_code": 16, "availability_zone": "nova-a", "node": "node-1",
             "launch_time": "2026-11-26T17:19:56.123Z", "tags": {"Name": "web", "env": "prod"}},
            {"id": "i-0c2d", "image_id": "ami-00ff", "instance_type": "t2.micro",
             "state": "pending", "availability_zone": "nova-b", "node": null,
             "launch_time": "2026-11-26T17:20:00Z", "tags": {}}
        ]});
        let t = output::table(items(&answer), &instance_columns());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        let cells = |l: &str| -> Vec<String> {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        };
        assert_eq!(
            cells(lines[0]),
            ["ID", "Name", "State", "Type", "Image", "Zone", "Node", "Launched"]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "i-0a1b",
                "web",
                "running",
                "t2.nano",
                "ami-00ff",
                "nova-a",
                "node-1",
                "2026-11-26T17:19:56Z"
            ]
        );
        assert_eq!(
            cells(lines[3]),
            [
                "i-0c2d",
                "",
                "pending",
                "t2.micro",
                "ami-00ff",
                "nova-b",
                "",
                "2026-11-26T17:20:00Z"
            ]
        );
    }

    #[test]
    fn state_change_table() {
        let rows = [
            json!({"instance_id": "i-1", "previous_state": "running", "current_state": "stopping"}),
            json!({"instance_id": "i-2", "previous_state": {"code": 16, "name": "running"}, "current_state": {"code": 64, "name": "stopping"}}),
        ];
        let t = output::table(&rows, &state_change_columns());
        assert!(t.contains("| i-1      | running  | stopping |"), "{t}");
        assert!(t.contains("| i-2      | running  | stopping |"), "{t}");
    }

    #[test]
    fn named_rows() {
        let rows = [json!({"name": "t2.nano"}), json!({"name": "t2.micro"})];
        let got = only(&rows, "name", &["t2.micro".into()], "instance type").expect("found");
        assert_eq!(got, [json!({"name": "t2.micro"})]);
        let e = only(&rows, "name", &["m5.large".into()], "instance type").expect_err("unknown");
        assert_eq!(e.to_string(), "no such instance type: m5.large");
        assert_eq!(only(&rows, "name", &[], "x").expect("all").len(), 2);
    }
}
