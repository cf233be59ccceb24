//! The ledger: a DynamoDB table that makes promotion exactly-once and never backwards.
//!
//! Two kinds of item share the table (partition key `pk`):
//! - `image#<arn>`: the claim on one image. While an invocation works on it the item is
//!   `in-progress` with a lease; when the outcome is final it is `done`. A repeated event sees
//!   `done` and stops; a concurrent one sees a live lease and stops.
//! - `pointer#<name>`: the promoted image for the pointer (its ARN, version and AMI) plus a
//!   lock with a lease, so only one invocation moves the pointer at a time and the stored
//!   version only ever grows.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::AwsError;
use crate::image::BuildVersion;
use crate::promotion::CurrentPromotion;

/// Image records are kept this long, then DynamoDB's TTL removes them.
const IMAGE_RECORD_DAYS: i64 = 400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Acquired,
    /// The image's outcome is already final.
    Done {
        outcome: String,
        finished_at: Option<String>,
    },
    /// Another invocation holds a live lease on it.
    Busy {
        owner: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    Acquired { current: Option<CurrentPromotion> },
    Busy { owner: String },
}

#[derive(Clone, Debug)]
pub struct Ledger {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

fn conditional_failed<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

impl Ledger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Ledger {
            client,
            table: table.into(),
        }
    }

    fn image_key(arn: &str) -> AttributeValue {
        s(format!("image#{arn}"))
    }

    fn pointer_key(name: &str) -> AttributeValue {
        s(format!("pointer#{name}"))
    }

    /// Claims an image for this invocation, unless it is done or leased to someone else.
    pub async fn claim_image(
        &self,
        arn: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, AwsError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::image_key(arn))
            .item("state", s("in-progress"))
            .item("owner", s(owner))
            .item("lease_until", n(now.timestamp() + lease.as_secs() as i64))
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :busy AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":busy", s("in-progress"))
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(e) if conditional_failed(&e) => {
                let item = self
                    .get(Self::image_key(arn), arn)
                    .await?
                    .unwrap_or_default();
                if text(&item, "state").as_deref() == Some("done") {
                    Ok(Claim::Done {
                        outcome: text(&item, "outcome").unwrap_or_default(),
                        finished_at: text(&item, "finished_at"),
                    })
                } else {
                    Ok(Claim::Busy {
                        owner: text(&item, "owner").unwrap_or_default(),
                    })
                }
            }
            Err(e) => Err(AwsError::new("PutItem (claim image)", arn, e)),
        }
    }

    /// Records the final outcome of an image this invocation claimed.
    pub async fn finish_image(
        &self,
        arn: &str,
        owner: &str,
        outcome: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::image_key(arn))
            .update_expression(
                "SET #state = :done, outcome = :outcome, detail = :detail, finished_at = :at, \
                 expires_at = :ttl REMOVE lease_until",
            )
            .condition_expression("#owner = :me")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":detail", s(if detail.is_empty() { "-" } else { detail }))
            .expression_attribute_values(":at", s(crate::promotion::timestamp(now)))
            .expression_attribute_values(":ttl", n(now.timestamp() + IMAGE_RECORD_DAYS * 86_400))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await
            .map_err(|e| AwsError::new("UpdateItem (finish image)", arn, e))?;
        Ok(())
    }

    /// Gives the claim back so a later event or retry can act on the image.
    pub async fn release_image(&self, arn: &str, owner: &str) -> Result<(), AwsError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", Self::image_key(arn))
            .condition_expression("#owner = :me AND #state = :busy")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":busy", s("in-progress"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(AwsError::new("DeleteItem (release image)", arn, e)),
        }
    }

    /// Takes the pointer lock and returns the promotion the ledger holds for it.
    pub async fn lock_pointer(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Lock, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::pointer_key(name))
            .update_expression("SET lock_owner = :me, lock_until = :until")
            .condition_expression("attribute_not_exists(lock_owner) OR lock_until < :now")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n(now.timestamp() + lease.as_secs() as i64))
            .expression_attribute_values(":now", n(now.timestamp()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Lock::Acquired {
                current: out.attributes().and_then(current_from),
            }),
            Err(e) if conditional_failed(&e) => {
                let item = self
                    .get(Self::pointer_key(name), name)
                    .await?
                    .unwrap_or_default();
                Ok(Lock::Busy {
                    owner: text(&item, "lock_owner").unwrap_or_default(),
                })
            }
            Err(e) => Err(AwsError::new("UpdateItem (lock pointer)", name, e)),
        }
    }

    /// Records the new promotion and releases the lock, only if this invocation holds the lock
    /// and the version grows.
    pub async fn commit_pointer(
        &self,
        name: &str,
        owner: &str,
        promoted: &CurrentPromotion,
        now: DateTime<Utc>,
    ) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::pointer_key(name))
            .update_expression(
                "SET image_arn = :arn, version_key = :v, ami_id = :ami, promoted_at = :at \
                 REMOVE lock_owner, lock_until",
            )
            .condition_expression(
                "lock_owner = :me AND (attribute_not_exists(version_key) OR version_key < :v)",
            )
            .expression_attribute_values(":arn", s(&promoted.image_arn))
            .expression_attribute_values(":v", s(promoted.version.sort_key()))
            .expression_attribute_values(":ami", s(&promoted.ami_id))
            .expression_attribute_values(":at", s(crate::promotion::timestamp(now)))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await
            .map_err(|e| AwsError::new("UpdateItem (commit pointer)", name, e))?;
        Ok(())
    }

    pub async fn unlock_pointer(&self, name: &str, owner: &str) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::pointer_key(name))
            .update_expression("REMOVE lock_owner, lock_until")
            .condition_expression("lock_owner = :me")
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(AwsError::new("UpdateItem (unlock pointer)", name, e)),
        }
    }

    /// The promotion the ledger holds for the pointer, read without locking.
    pub async fn current(&self, name: &str) -> Result<Option<CurrentPromotion>, AwsError> {
        Ok(self
            .get(Self::pointer_key(name), name)
            .await?
            .as_ref()
            .and_then(current_from))
    }

    async fn get(
        &self,
        key: AttributeValue,
        resource: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::new("GetItem", resource, e))?;
        Ok(out.item().cloned())
    }
}

fn current_from(item: &HashMap<String, AttributeValue>) -> Option<CurrentPromotion> {
    Some(CurrentPromotion {
        image_arn: text(item, "image_arn")?,
        version: BuildVersion::from_sort_key(&text(item, "version_key")?)?,
        ami_id: text(item, "ami_id")?,
    })
}
