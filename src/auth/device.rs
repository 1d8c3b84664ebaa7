//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device
//! Cookies"): a successful login, or a completed password reset, leaves in
//! the browser a cookie that names the account and a random nonce, signed
//! with a key only the server has. A login from a browser that holds a
//! valid device cookie *for the account it logs in to* is judged by that
//! device's own failure counter (`device:<nonce>`), not by the ID's or the
//! account's lock: strangers guessing at the name cannot lock its owner's
//! usual browser out. A device that fails too often is locked itself, and
//! is then an ordinary browser again.
//!
//! The cookie proves only "this browser logged in to this account before";
//! it never logs anyone in: the password is still checked.

use crate::domain::UserId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a valid device cookie says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub user: UserId,
    nonce: [u8; 16],
}

impl Device {
    /// A new device for `user` (a new nonce: a new counter).
    pub fn new(user: UserId) -> Self {
        Self {
            user,
            nonce: crate::crypto::random_bytes::<16>(),
        }
    }

    /// Its failure counter in the lockout table.
    pub fn lockout_key(&self) -> String {
        format!("device:{}", URL_SAFE_NO_PAD.encode(self.nonce))
    }
}

#[derive(Clone)]
pub struct DeviceKey([u8; 32]);

impl DeviceKey {
    /// Derived from the store's key: device cookies outlive restarts and
    /// are worthless against another installation.
    pub fn derive(store_key: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(store_key).expect("any key length");
        mac.update(b"gatehouse device cookie key v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, user: UserId, nonce: &[u8; 16]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"v1|");
        mac.update(&user.0.to_be_bytes());
        mac.update(b"|");
        mac.update(nonce);
        mac
    }

    /// The cookie's value: `v1.<user>.<nonce>.<mac>`.
    pub fn sign(&self, device: &Device) -> String {
        let mac = self.mac(device.user, &device.nonce).finalize().into_bytes();
        format!(
            "v1.{}.{}.{}",
            device.user.0,
            URL_SAFE_NO_PAD.encode(device.nonce),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The device a cookie names, if it is one we signed (checked in
    /// constant time); None for anything else.
    pub fn verify(&self, value: &str) -> Option<Device> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(user), Some(nonce), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let user = UserId(user.parse().ok()?);
        let nonce: [u8; 16] = URL_SAFE_NO_PAD.decode(nonce).ok()?.try_into().ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        self.mac(user, &nonce).verify_slice(&mac).ok()?;
        Some(Device { user, nonce })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_cookie_verifies_only_as_signed() {
        let key = DeviceKey::derive(&[1; 32]);
        let device = Device::new(UserId(7));
        let cookie = key.sign(&device);
        assert_eq!(key.verify(&cookie), Some(device.clone()));
        // Another account's number in it, another key, a changed nonce,
        // garbage: none is a device.
        let forged = cookie.replacen("v1.7.", "v1.8.", 1);
        assert_eq!(key.verify(&forged), None);
        assert_eq!(DeviceKey::derive(&[2; 32]).verify(&cookie), None);
        let mut chars: Vec<char> = cookie.chars().collect();
        let i = cookie.find('.').unwrap() + 4;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        assert_eq!(key.verify(&chars.into_iter().collect::<String>()), None);
        for junk in ["", "v1", "v1.7.x.y", "v2.7.AAAA.BBBB", "v1.7.a.b.c"] {
            assert_eq!(key.verify(junk), None, "{junk}");
        }
        assert_ne!(
            Device::new(UserId(7)).lockout_key(),
            device.lockout_key(),
            "each login a new counter"
        );
    }
}
