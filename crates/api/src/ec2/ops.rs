//! One value per EC2 request: the operation and all of its parameters,
//! parsed before anything acts. Each area (`meta`, `compute`, `network`,
//! `tags`) owns its own operation enum and parser; this module only chains
//! them and refuses what none recognises.

use nuage_model::identity::Principal;

use super::error::{Ec2Error, Result};
use super::params::Params;
use super::xml::Xml;
use super::{compute, meta, network, tags};
use crate::Core;

/// What an operation runs with.
pub struct Ctx<'a> {
    pub core: &'a Core,
    pub principal: &'a Principal,
    pub request_id: String,
}

impl Ctx<'_> {
    /// The response document of `action`.
    pub fn xml(&self, action: &str) -> Xml {
        Xml::new(action, &self.request_id)
    }
}

/// A recognised EC2 request.
#[derive(Debug)]
pub enum Operation {
    Meta(meta::Op),
    Compute(compute::Op),
    Network(network::Op),
    Tags(tags::Op),
}

/// Every action nuage serves, sorted.
pub fn served_actions() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = meta::ACTIONS.to_vec();
    v.extend_from_slice(compute::ACTIONS);
    v.extend_from_slice(network::ACTIONS);
    v.extend_from_slice(tags::ACTIONS);
    v.sort_unstable();
    v
}

impl Operation {
    /// Recognises `action` and parses its parameters from `p`.
    pub fn parse(action: &str, p: &Params) -> Result<Operation> {
        if let Some(op) = meta::Op::parse(action, p)? {
            return Ok(Operation::Meta(op));
        }
        if let Some(op) = compute::Op::parse(action, p)? {
            return Ok(Operation::Compute(op));
        }
        if let Some(op) = network::Op::parse(action, p)? {
            return Ok(Operation::Network(op));
        }
        if let Some(op) = tags::Op::parse(action, p)? {
            return Ok(Operation::Tags(op));
        }
        Err(Ec2Error::new(
            400,
            "InvalidAction",
            format!("The action {action} is not valid for this web service (nuage serves {} EC2 actions; nothing was changed)", served_actions().len()),
        ))
    }

    /// The action's name, as in the request.
    pub fn action(&self) -> &'static str {
        match self {
            Operation::Meta(op) => op.action(),
            Operation::Compute(op) => op.action(),
            Operation::Network(op) => op.action(),
            Operation::Tags(op) => op.action(),
        }
    }

    /// Whether the operation only reads (what `DryRun` checks it against).
    pub fn reads_only(&self) -> bool {
        let a = self.action();
        a.starts_with("Describe") || a.starts_with("Get")
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Xml> {
        match self {
            Operation::Meta(op) => op.run(ctx).await,
            Operation::Compute(op) => op.run(ctx).await,
            Operation::Network(op) => op.run(ctx).await,
            Operation::Tags(op) => op.run(ctx).await,
        }
    }
}
