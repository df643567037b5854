//! What container backends share, whatever their engine (Docker and Podman today, a Kubernetes
//! pod later): the commands around the code, and the small changes carried by the next one.

pub mod pending;
pub mod wrapper;
