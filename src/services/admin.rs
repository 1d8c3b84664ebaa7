//! What an administrator can do to accounts and invitations (SPEC §3, §7),
//! for every front end: the command line (on the database or through the
//! running server's admin socket) today, the admin console later. Each
//! operation takes parsed values and returns what it did; an `AdminError`
//! says what is wrong and what to do. Every change is recorded in the
//! audit log with the actor.

use super::Links;
use crate::auth::password::Passwords;
use crate::clock::{Clock, Timestamp};
use crate::domain::lockout::{Gate, LockoutPolicy, LockoutState};
use crate::domain::{
    AuditEvent, AuditKind, CommonPasswords, EmailAddress, Group, GroupName, Invitation,
    InviteToken, LinkToken, LoginId, Membership, NewPassword, OneTimeToken, PasswordPolicy, Role,
    TokenPurpose, User, UserId, UserStatus, Username, lockout_keys_of,
};
use crate::store::{Backup, BackupStats, NewInvite, NewUser, Store, StoreError, Unique};
use std::path::Path;
use std::time::Duration;

/// "Until unlocked": a lock far in the future.
pub const INDEFINITE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long the link of an account made without a password works.
pub const PASSWORD_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub struct Admin<'a> {
    pub store: &'a dyn Store,
    /// None when the backend has no file copy.
    pub backup: Option<&'a dyn Backup>,
    pub passwords: &'a Passwords,
    pub password_policy: PasswordPolicy,
    pub common_passwords: &'a CommonPasswords,
    pub lockout: LockoutPolicy,
    pub links: Links,
    pub clock: Clock,
    /// Who acts: `cli:<os user>`, later `admin:<username>`.
    pub actor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A mistake in what was asked (bad usage): the text says what to do.
    #[error("{0}")]
    Refused(String),
    /// An email or username that is taken.
    #[error("{}", match .0 {
        Unique::Email => "an account with this email address already exists; see `gatehouse user list`",
        Unique::Username => "the username is taken; choose another with --username",
    })]
    Taken(Unique),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AdminResult<T> = Result<T, AdminError>;

fn refused(text: impl Into<String>) -> AdminError {
    AdminError::Refused(text.into())
}

/// `username <email>`, how admin messages name an account.
pub fn name(u: &User) -> String {
    format!("{} <{}>", u.username, u.email)
}

/// An account made by an admin.
pub struct Added {
    pub user: User,
    /// Without a password: the one-time link where its owner sets one.
    pub password_link: Option<String>,
}

pub enum Unlocked {
    /// Nothing was locked or counted.
    Nothing,
    Cleared,
}

pub enum Verified {
    Now,
    Already,
    /// A disabled account stays disabled.
    Disabled,
}

impl Admin<'_> {
    /// The account an ID names.
    pub async fn find(&self, id: &LoginId) -> AdminResult<User> {
        self.store.user_by_login_id(id).await?.ok_or_else(|| {
            refused(format!(
                "no account has the ID {:?}; see `gatehouse user list`",
                id.to_string()
            ))
        })
    }

    /// Checks a password an admin typed against the rule.
    pub fn check_password(
        &self,
        raw: String,
        email: &str,
        username: &str,
    ) -> AdminResult<NewPassword> {
        NewPassword::parse(
            self.password_policy,
            self.common_passwords,
            raw,
            &[email, username],
        )
        .map_err(|problems| {
            let why: Vec<String> = problems.iter().map(ToString::to_string).collect();
            refused(format!("the password was refused: {}", why.join(" ")))
        })
    }

    async fn hash(&self, password: &str) -> AdminResult<String> {
        self.passwords.hash_text(password).await.map_err(|_| {
            refused("the server is busy hashing passwords; try again in a few seconds")
        })
    }

    async fn audit(&self, user: &User, what: &str) -> AdminResult<()> {
        let event = AuditEvent::new(self.clock.now(), AuditKind::Admin, self.actor.clone())
            .user(user.id)
            .detail(format!("user {what}"));
        Ok(self.store.audit(vec![event]).await?)
    }

    /// Removes every second factor of `user` (a lost device): audited,
    /// its owner mailed. False: it had none.
    pub async fn reset_second_factors(&self, user: &User) -> AdminResult<bool> {
        let had = self.store.second_factors(user.id).await?;
        if had == crate::domain::second_factor::SecondFactors::default() {
            return Ok(false);
        }
        self.store
            .change_second_factors(user.id, crate::domain::second_factor::FactorChange::Clear)
            .await?;
        let now = self.clock.now();
        crate::services::factors::record_factor_event(
            self.store,
            now,
            user.id,
            &self.actor,
            "second factors reset by an admin",
            None,
        )
        .await;
        crate::services::factors::tell_owner(
            self.store,
            &self.links,
            user,
            &crate::mail::requests::FactorNotice::ResetByAdmin,
            now,
        )
        .await?;
        Ok(true)
    }

    /// What second factors `user` has (`user show`).
    pub async fn second_factors(
        &self,
        user: &User,
    ) -> AdminResult<crate::domain::second_factor::SecondFactors> {
        Ok(self.store.second_factors(user.id).await?)
    }

    /// An instance must keep an active administrator.
    async fn refuse_if_last_admin(&self, user: &User, what: &str) -> AdminResult<()> {
        if user.role != Role::Admin || user.status != UserStatus::Active {
            return Ok(());
        }
        let others = self
            .store
            .users()
            .await?
            .iter()
            .filter(|u| u.id != user.id && u.role == Role::Admin && u.status == UserStatus::Active)
            .count();
        if others == 0 {
            return Err(refused(format!(
                "refusing to {what} {}: it is the last active administrator. Promote another account first (`gatehouse user promote ID`)",
                name(user)
            )));
        }
        Ok(())
    }

    /// Creates an active account. Without a password it gets one nobody
    /// knows, and a link (valid 7 days) where its owner chooses one. The
    /// documents are not accepted yet: asked at the first login.
    pub async fn add_user(
        &self,
        email: EmailAddress,
        username: Username,
        admin: bool,
        password: Option<NewPassword>,
        groups: Vec<GroupName>,
    ) -> AdminResult<Added> {
        self.require_groups(&groups).await?;
        let hash = match &password {
            Some(p) => self.hash(p.expose()).await?,
            None => self.hash(LinkToken::generate().as_str()).await?,
        };
        let new = NewUser {
            email,
            username,
            password_hash: hash,
            role: if admin { Role::Admin } else { Role::User },
            status: UserStatus::Active,
            created_at: self.clock.now(),
            consent: None,
            groups,
        };
        let user = match self.store.create_user(new, None).await {
            Ok(Ok(u)) => u,
            Ok(Err(problem)) => return Err(refused(problem.to_string())),
            Err(StoreError::Conflict(field)) => return Err(AdminError::Taken(field)),
            Err(e) => return Err(e.into()),
        };
        self.audit(&user, "add").await?;
        let password_link = match password {
            Some(_) => None,
            None => Some(self.password_link(&user).await?),
        };
        Ok(Added {
            user,
            password_link,
        })
    }

    /// A reset token for `user`, valid 7 days, as a link (no mail).
    async fn password_link(&self, user: &User) -> AdminResult<String> {
        let secret = LinkToken::generate();
        let token = OneTimeToken::new(
            TokenPurpose::Reset,
            user.id,
            self.clock.now(),
            PASSWORD_LINK_TTL,
        );
        self.store.issue_token(secret.hash(), token, None).await?;
        Ok(self.links.reset(secret.as_str()))
    }

    /// Until when the account is locked, by either of its names.
    pub async fn locked_until(&self, user: &User) -> AdminResult<Option<Timestamp>> {
        let now = self.clock.now();
        let mut until = None;
        for key in lockout_keys_of(user) {
            if let Gate::Locked { until: t } =
                self.lockout.gate(&self.store.lockout(&key).await?, now)
            {
                until = until.max(Some(t));
            }
        }
        Ok(until)
    }

    /// Every account with its lock.
    pub async fn list_users(&self) -> AdminResult<Vec<(User, Option<Timestamp>)>> {
        let mut rows = Vec::new();
        for user in self.store.users().await? {
            let locked = self.locked_until(&user).await?;
            rows.push((user, locked));
        }
        Ok(rows)
    }

    /// How many sessions the account has.
    pub async fn session_count(&self, user: UserId) -> AdminResult<usize> {
        Ok(self.store.sessions_of(user).await?.len())
    }

    /// Sets the password; every session ends and any lock is lifted.
    /// Returns how many sessions ended.
    pub async fn set_password(&self, user: &User, password: &NewPassword) -> AdminResult<usize> {
        let hash = self.hash(password.expose()).await?;
        self.store.set_password_hash(user.id, hash).await?;
        let ended = self.store.end_sessions(user.id).await?;
        self.store.clear_lockouts(&lockout_keys_of(user)).await?;
        self.audit(user, "set-password").await?;
        Ok(ended)
    }

    /// Locks the account for `duration` (None: until unlocked); its
    /// sessions end. Returns the end of the lock and how many sessions
    /// ended.
    pub async fn lock(
        &self,
        user: &User,
        duration: Option<Duration>,
    ) -> AdminResult<(Timestamp, usize)> {
        let now = self.clock.now();
        let until = now.plus(duration.unwrap_or(INDEFINITE));
        if until > Timestamp::LAST {
            return Err(refused(
                "--for ends after the year 9999; give a shorter time such as 30d, or leave --for out to lock until `gatehouse user unlock`",
            ));
        }
        let state = LockoutState {
            failures: 0,
            last_failure: Some(now),
            locked_until: Some(until),
            by_admin: true,
            cycles: 0,
        };
        self.store
            .set_lockouts(&lockout_keys_of(user), state)
            .await?;
        let ended = self.store.end_sessions(user.id).await?;
        self.audit(user, &format!("lock until {until}")).await?;
        Ok((until, ended))
    }

    /// Lifts the lock and failure count of an ID, and of the account it
    /// names (both of its names), if any.
    pub async fn unlock(&self, id: &LoginId) -> AdminResult<(Option<User>, Unlocked)> {
        let user = self.store.user_by_login_id(id).await?;
        let mut keys = user.as_ref().map(lockout_keys_of).unwrap_or_default();
        if !keys.contains(&id.lockout_key()) {
            keys.push(id.lockout_key());
        }
        let cleared = self.store.clear_lockouts(&keys).await?;
        if cleared == 0 {
            return Ok((user, Unlocked::Nothing));
        }
        let event = AuditEvent::new(self.clock.now(), AuditKind::LockCleared, self.actor.clone())
            .maybe_user(user.as_ref().map(|u| u.id))
            .subject(id.to_string());
        self.store.audit(vec![event]).await?;
        Ok((user, Unlocked::Cleared))
    }

    /// Marks the address confirmed, so that the account can log in.
    pub async fn verify(&self, user: &User) -> AdminResult<Verified> {
        match user.status {
            UserStatus::PendingVerification => {
                self.store.set_status(user.id, UserStatus::Active).await?;
                self.audit(user, "verify").await?;
                Ok(Verified::Now)
            }
            UserStatus::Active => Ok(Verified::Already),
            UserStatus::Disabled => Ok(Verified::Disabled),
        }
    }

    /// Disables the account; its sessions end now. Returns how many.
    pub async fn disable(&self, user: &User) -> AdminResult<usize> {
        self.refuse_if_last_admin(user, "disable").await?;
        self.store.set_status(user.id, UserStatus::Disabled).await?;
        let ended = self.store.end_sessions(user.id).await?;
        self.audit(user, "disable").await?;
        Ok(ended)
    }

    /// How many stored password hashes there are of each scheme and cost.
    pub async fn hash_census(&self) -> AdminResult<crate::auth::password::Census> {
        use crate::auth::password::Census;
        let heads = self.store.count_hash_prefixes(Census::PREFIX_LEN).await?;
        Ok(Census::of_prefixes(&heads))
    }

    /// Ends every session of the account now. Returns how many.
    pub async fn logout(&self, user: &User) -> AdminResult<usize> {
        let ended = self.store.end_sessions(user.id).await?;
        self.audit(user, "logout").await?;
        Ok(ended)
    }

    /// Ends every session of every account: (accounts that had one,
    /// sessions ended).
    pub async fn logout_all(&self) -> AdminResult<(usize, usize)> {
        let (mut accounts, mut ended) = (0, 0);
        for user in self.store.users().await? {
            let n = self.store.end_sessions(user.id).await?;
            if n > 0 {
                accounts += 1;
                ended += n;
            }
        }
        let event = AuditEvent::new(self.clock.now(), AuditKind::Admin, self.actor.clone()).detail(
            format!("logout all: {ended} session(s) of {accounts} account(s)"),
        );
        self.store.audit(vec![event]).await?;
        Ok((accounts, ended))
    }

    pub async fn enable(&self, user: &User) -> AdminResult<()> {
        self.store.set_status(user.id, UserStatus::Active).await?;
        self.audit(user, "enable").await
    }

    /// Deletes the account, its sessions and tokens (its audit events
    /// stay). Returns how many sessions ended.
    pub async fn delete(&self, user: &User) -> AdminResult<usize> {
        self.refuse_if_last_admin(user, "delete").await?;
        let sessions = self.store.sessions_of(user.id).await?.len();
        self.store.delete_user(user.id).await?;
        self.audit(user, "delete").await?;
        Ok(sessions)
    }

    pub async fn promote(&self, user: &User) -> AdminResult<()> {
        self.store.set_role(user.id, Role::Admin).await?;
        self.audit(user, "promote").await
    }

    pub async fn demote(&self, user: &User) -> AdminResult<()> {
        self.refuse_if_last_admin(user, "demote").await?;
        self.store.set_role(user.id, Role::User).await?;
        self.audit(user, "demote").await
    }

    /// Makes an invitation; returns it and its link (shown only now).
    pub async fn create_invite(
        &self,
        uses: u32,
        lifetime: Option<Duration>,
        email: Option<EmailAddress>,
        admin: bool,
        groups: Vec<GroupName>,
    ) -> AdminResult<(Invitation, String)> {
        if uses == 0 {
            return Err(refused("--uses must be at least 1"));
        }
        self.require_groups(&groups).await?;
        let now = self.clock.now();
        if lifetime.is_some_and(|d| now.plus(d) > Timestamp::LAST) {
            return Err(refused(
                "--expires ends after the year 9999; give a shorter time such as 30d, or `never`",
            ));
        }
        let token = InviteToken::generate();
        let invite = self
            .store
            .create_invite(NewInvite {
                token_hash: token.hash(),
                created_at: now,
                expires_at: lifetime.map(|d| now.plus(d)),
                max_uses: uses,
                email,
                role: if admin { Role::Admin } else { Role::User },
                first_run: false,
                groups,
            })
            .await?;
        let event = AuditEvent::new(now, AuditKind::Admin, self.actor.clone())
            .subject(format!("invitation {}", invite.id))
            .detail(format!(
                "invite create ({}, {} uses{})",
                invite.role,
                invite.max_uses,
                if invite.groups.is_empty() {
                    String::new()
                } else {
                    format!(", groups {}", join_groups(&invite.groups))
                }
            ));
        self.store.audit(vec![event]).await?;
        Ok((invite, self.links.invite(&token)))
    }

    pub async fn invites(&self) -> AdminResult<Vec<Invitation>> {
        Ok(self.store.invites().await?)
    }

    pub async fn revoke_invite(&self, id: u64) -> AdminResult<()> {
        let now = self.clock.now();
        if !self.store.revoke_invite(id, now).await? {
            return Err(refused(format!(
                "there is no invitation {id}; see `gatehouse invite list`"
            )));
        }
        let event = AuditEvent::new(now, AuditKind::Admin, self.actor.clone())
            .subject(format!("invitation {id}"))
            .detail("invite revoke");
        Ok(self.store.audit(vec![event]).await?)
    }

    /// Audit events at most `since` old, about `user` if given, newest
    /// first.
    pub async fn audit_events(
        &self,
        since: Option<Duration>,
        user: Option<&LoginId>,
        limit: usize,
    ) -> AdminResult<Vec<AuditEvent>> {
        let since = since.map(|d| {
            let now = self.clock.now();
            Timestamp::from_millis(
                now.as_millis()
                    .saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            )
        });
        let user = match user {
            Some(id) => Some(
                self.store
                    .user_by_login_id(id)
                    .await?
                    .ok_or_else(|| refused(format!("no account has the ID {:?}", id.to_string())))?
                    .id,
            ),
            None => None,
        };
        Ok(self.store.audit_events(since, user, limit).await?)
    }

    /// A consistent copy of the database into the new file `target`.
    pub async fn backup(&self, target: &Path) -> AdminResult<BackupStats> {
        if target.exists() {
            return Err(refused(format!(
                "{} exists already; choose a new file (a backup never overwrites)",
                target.display()
            )));
        }
        let Some(backup) = self.backup else {
            return Err(refused(
                "this database cannot be copied by gatehouse; back it up with its own tools",
            ));
        };
        let stats = backup.backup(target).await?;
        let event = AuditEvent::new(self.clock.now(), AuditKind::Admin, self.actor.clone())
            .detail(format!("backup to {}", target.display()));
        self.store.audit(vec![event]).await?;
        Ok(stats)
    }
}

/// Group names as a list for people: `admins, ops`.
pub fn join_groups(groups: &[GroupName]) -> String {
    groups
        .iter()
        .map(GroupName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Groups (SPEC §9).
impl Admin<'_> {
    fn no_group(name: &GroupName) -> AdminError {
        refused(format!(
            "there is no group {name:?}; see `gatehouse group list`, or create it with `gatehouse group add {name}`",
            name = name.as_str()
        ))
    }

    /// The names of every group.
    pub(super) async fn group_names(&self) -> AdminResult<Vec<GroupName>> {
        Ok(self
            .store
            .groups()
            .await?
            .into_iter()
            .map(|(g, _)| g.name)
            .collect())
    }

    /// Refuses names that are no group, before anything is made.
    pub(super) async fn require_groups(&self, names: &[GroupName]) -> AdminResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        let known = self.group_names().await?;
        match names.iter().find(|n| !known.contains(n)) {
            Some(missing) => Err(Self::no_group(missing)),
            None => Ok(()),
        }
    }

    async fn audit_group(
        &self,
        name: &GroupName,
        user: Option<UserId>,
        what: &str,
    ) -> AdminResult<()> {
        let event = AuditEvent::new(self.clock.now(), AuditKind::Admin, self.actor.clone())
            .maybe_user(user)
            .subject(format!("group {name}"))
            .detail(format!("group {what}"));
        Ok(self.store.audit(vec![event]).await?)
    }

    /// Every group with how many members it has.
    pub async fn groups(&self) -> AdminResult<Vec<(Group, usize)>> {
        Ok(self.store.groups().await?)
    }

    /// The members of a group.
    pub async fn group_members(&self, name: &GroupName) -> AdminResult<Vec<User>> {
        let ids = self
            .store
            .group_members(name)
            .await?
            .ok_or_else(|| Self::no_group(name))?;
        let mut users = Vec::new();
        for id in ids {
            if let Some(u) = self.store.user(id).await? {
                users.push(u);
            }
        }
        Ok(users)
    }

    pub async fn add_group(&self, name: GroupName) -> AdminResult<Group> {
        let group = Group {
            name,
            created_at: self.clock.now(),
        };
        if !self.store.create_group(group.clone()).await? {
            return Err(refused(format!(
                "the group {:?} exists already; see `gatehouse group list`",
                group.name.as_str()
            )));
        }
        self.audit_group(&group.name, None, "add").await?;
        Ok(group)
    }

    /// Deletes a group; its members leave it (their accounts stay).
    /// Returns how many members it had.
    pub async fn delete_group(&self, name: &GroupName) -> AdminResult<usize> {
        let members = self
            .store
            .delete_group(name)
            .await?
            .ok_or_else(|| Self::no_group(name))?;
        self.audit_group(name, None, &format!("delete ({members} member(s))"))
            .await?;
        Ok(members)
    }

    /// Puts the account in the group; false when it was in it already.
    pub async fn add_member(&self, name: &GroupName, user: &User) -> AdminResult<bool> {
        self.change_membership(name, user, true).await
    }

    /// Takes the account out of the group; false when it was not in it.
    pub async fn remove_member(&self, name: &GroupName, user: &User) -> AdminResult<bool> {
        self.change_membership(name, user, false).await
    }

    async fn change_membership(
        &self,
        name: &GroupName,
        user: &User,
        member: bool,
    ) -> AdminResult<bool> {
        let outcome = if member {
            self.store.add_member(name, user.id).await?
        } else {
            self.store.remove_member(name, user.id).await?
        };
        match outcome {
            Membership::Changed => {
                let what = if member {
                    "add-member"
                } else {
                    "remove-member"
                };
                self.audit_group(name, Some(user.id), what).await?;
                Ok(true)
            }
            Membership::Unchanged => Ok(false),
            Membership::NoGroup => Err(Self::no_group(name)),
            Membership::NoUser => Err(refused(format!(
                "the account {} was deleted meanwhile; see `gatehouse user list`",
                name_of(user)
            ))),
        }
    }
}

fn name_of(u: &User) -> String {
    name(u)
}
