//! Tenants: one game-server deployment each, identified by id, region and
//! version, and carried on every Kafka record as four headers.

use std::fmt;

use uuid::Uuid;

/// Header names of the tenant on every consumed and produced record.
pub const TENANT_ID_HEADER: &str = "TENANT_ID";
pub const REGION_HEADER: &str = "REGION";
pub const MAJOR_VERSION_HEADER: &str = "MAJOR_VERSION";
pub const MINOR_VERSION_HEADER: &str = "MINOR_VERSION";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tenant {
    pub id: Uuid,
    pub region: String,
    pub major_version: u16,
    pub minor_version: u16,
}

impl Tenant {
    /// The four tenant headers with their exact bytes: the id as 36 ASCII
    /// characters, the region as text, each version as a big-endian u16.
    pub fn kafka_headers(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (
                TENANT_ID_HEADER,
                self.id.hyphenated().to_string().into_bytes(),
            ),
            (REGION_HEADER, self.region.as_bytes().to_vec()),
            (
                MAJOR_VERSION_HEADER,
                self.major_version.to_be_bytes().to_vec(),
            ),
            (
                MINOR_VERSION_HEADER,
                self.minor_version.to_be_bytes().to_vec(),
            ),
        ]
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} {}.{})",
            self.id, self.region, self.major_version, self.minor_version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_have_exact_bytes() {
        let tenant = Tenant {
            id: Uuid::parse_str("083839c6-c47c-42a6-9585-76492795d123").unwrap(),
            region: "GMS".to_string(),
            major_version: 83,
            minor_version: 1,
        };

        let headers = tenant.kafka_headers();
        assert_eq!(
            headers[0],
            (
                "TENANT_ID",
                b"083839c6-c47c-42a6-9585-76492795d123".to_vec()
            )
        );
        assert_eq!(headers[1], ("REGION", b"GMS".to_vec()));
        assert_eq!(headers[2], ("MAJOR_VERSION", vec![0x00, 0x53]));
        assert_eq!(headers[3], ("MINOR_VERSION", vec![0x00, 0x01]));
    }
}
