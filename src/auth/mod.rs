//! Authentication mechanisms, each free of HTTP: password hashing on its
//! own thread pool, the session cache, CSRF tokens, and the per-client
//! limiters. The rules they apply (lockout, session expiry) are pure
//! functions in `domain/`.

pub mod csrf;
pub mod device;
pub mod jwt;
pub mod passkeys;
pub mod password;
pub mod pool;
pub mod ratelimit;
pub mod session;
