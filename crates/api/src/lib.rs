//! emberscope's wire contract, shared by every role and every client: the API types generated
//! from `proto/` (Pyroscope's messages with their published field numbers), the error codes
//! with the HTTP and gRPC statuses they map to ([`Code`]), the framing of unary calls in the
//! three protocols one port serves — Connect, gRPC and gRPC-Web ([`wire`]) — and a typed
//! Connect client ([`client::ApiClient`]).
//!
//! Owns the bytes on the wire; not what a server does with them (`server`).

pub mod client;
mod codes;
pub mod wire;

pub use codes::{Code, Status};

/// The API types generated from `proto/` (the wire contract).
#[allow(missing_debug_implementations, clippy::all, unused_qualifications)]
pub mod proto {
    pub mod types {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/types.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/types.v1.serde.rs"));
        }
    }
    pub mod push {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/push.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/push.v1.serde.rs"));
        }
    }
    pub mod querier {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/querier.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/querier.v1.serde.rs"));
        }
    }
    pub mod settings {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/settings.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/settings.v1.serde.rs"));
        }
    }
    pub mod capabilities {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/capabilities.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/capabilities.v1.serde.rs"));
        }
    }
    pub mod version {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/version.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/version.v1.serde.rs"));
        }
    }
    /// emberscope's internal call from a distributor to a segment writer.
    pub mod segmentwriter {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/segmentwriter.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/segmentwriter.v1.serde.rs"));
        }
    }
    /// emberscope's internal call from a query frontend to a query backend.
    pub mod querybackend {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/querybackend.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/querybackend.v1.serde.rs"));
        }
    }
}
