//! The camera list in its written form: `[[camera]]` tables of the TOML file, JSON bodies of
//! the camera API (`POST /api/v1/cameras`, `PUT /api/v1/cameras/{id}`) and the entries of
//! the camera state file are one type, [`CameraTable`], checked by one function,
//! [`super::check_cameras`]; so an error names the key the same way wherever the camera came from
//! (`camera[2].url: must start with rtsp://`).

use super::{CameraTable, RawCamera, MAX_CAMERA_JSON};
use crate::error::Result;
use crate::{bail, err};

impl std::fmt::Debug for CameraTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CameraTable({:?})", self.0.id)
    }
}

impl CameraTable {
    /// Reads a camera's JSON object (unknown keys are refused, as in the TOML file). `id`,
    /// when given (`PUT /api/v1/cameras/{id}`), is the camera's id: a body may leave `id`
    /// out, but may not name another (a camera's id names its footage; renaming is a
    /// `DELETE` and a `POST`).
    pub fn from_json(body: &[u8], id: Option<&str>) -> Result<CameraTable> {
        if body.len() > MAX_CAMERA_JSON {
            bail!(InvalidArgument, "camera: the body is over {MAX_CAMERA_JSON} bytes");
        }
        let mut v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| err!(InvalidArgument, "camera: not JSON ({e})"))?;
        let obj = v.as_object_mut().ok_or_else(|| err!(InvalidArgument, "camera: expected a JSON object"))?;
        if let Some(id) = id {
            match obj.get("id") {
                None => {
                    obj.insert("id".into(), id.into());
                }
                Some(serde_json::Value::String(s)) if s == id => {}
                Some(_) => {
                    bail!(InvalidArgument, "camera.id: must be {id:?} (the id in the path); an id cannot change")
                }
            }
        }
        let raw: RawCamera = serde_json::from_value(v).map_err(|e| err!(InvalidArgument, "camera: {e}"))?;
        Ok(CameraTable(raw))
    }

    /// The camera's id as written.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Whether the camera is to record.
    pub fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// The same table with `enabled` set.
    pub fn with_enabled(&self, enabled: bool) -> CameraTable {
        let mut t = self.clone();
        t.0.enabled = enabled;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::check_cameras;

    fn table(json: &str, id: Option<&str>) -> Result<CameraTable> {
        CameraTable::from_json(json.as_bytes(), id)
    }

    #[test]
    fn json_bodies_are_checked_like_the_file() {
        let door = table(r#"{"id": "door", "source": "testsrc", "fps": 5}"#, None).unwrap();
        let bad = table(r#"{"id": "yard", "url": "http://x"}"#, None).unwrap();
        let e = check_cameras(&[door.clone(), bad], &crate::config::Retention::default()).unwrap_err();
        assert_eq!(e.to_string(), "camera[1].url: must start with rtsp://");
        let e = check_cameras(&[door.clone(), door.clone()], &crate::config::Retention::default()).unwrap_err();
        assert!(e.to_string().starts_with("camera[1].id: \"door\" is used by two cameras"), "{e}");
        assert!(table(r#"{"id": "x", "source": "testsrc", "colour": 1}"#, None)
            .unwrap_err()
            .to_string()
            .contains("colour"));
        assert!(table("[1]", None).is_err());
        assert!(table(&format!("{{\"id\": \"{}\"}}", "x".repeat(MAX_CAMERA_JSON)), None).is_err());
    }

    #[test]
    fn put_takes_the_id_from_the_path() {
        let t = table(r#"{"source": "testsrc"}"#, Some("door")).unwrap();
        assert_eq!(t.id(), "door");
        let e = table(r#"{"id": "yard", "source": "testsrc"}"#, Some("door")).unwrap_err();
        assert!(e.to_string().starts_with("camera.id:"), "{e}");
        assert!(!t.with_enabled(false).enabled());
    }

    #[test]
    fn tables_round_trip_through_json_and_hide_secrets_in_debug() {
        let t = table(r#"{"id": "door", "url": "rtsp://u:pw@cam/x", "password": "pw"}"#, None).unwrap();
        let again: CameraTable = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert!(again == t);
        assert!(!format!("{t:?}").contains("pw"));
    }
}
