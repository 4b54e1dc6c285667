//! `onvif-device PORT HOST USER PASSWORD RTSP_BASE`: serves one ONVIF camera on 0.0.0.0:PORT
//! whose service addresses name HOST. Three profiles: a 1920x1080 H.264 main stream, a
//! 640x360 H.264 sub stream and a JPEG one; GetStreamUri answers `RTSP_BASE/<token>` with
//! the login embedded, as some cameras do, so the client must strip it. Every call but
//! GetSystemDateAndTime needs a valid WS-UsernameToken digest (checked by onvif-server).

use async_trait::async_trait;
use onvif_server::{DeviceInfo, DeviceService, EventService, MediaProfile, MediaService, OnvifError, OnvifServer};

#[derive(Clone)]
struct Camera {
    rtsp_base: String,
}

#[async_trait]
impl DeviceService for Camera {
    async fn get_device_information(&self) -> Result<DeviceInfo, OnvifError> {
        Ok(DeviceInfo {
            manufacturer: "Edgenvr Test".into(),
            model: "Peer-1080".into(),
            firmware_version: "1.2.3".into(),
            serial_number: "SN-42".into(),
            hardware_id: "peer-hw".into(),
        })
    }
}

fn profile(token: &str, w: u32, h: u32, enc: &str, fps: u32, kbps: u32) -> MediaProfile {
    MediaProfile {
        token: token.into(),
        name: token.into(),
        video_source_token: "VideoSource_1".into(),
        width: w,
        height: h,
        encoding: enc.into(),
        framerate: fps,
        bitrate: kbps,
    }
}

#[async_trait]
impl MediaService for Camera {
    fn profiles(&self) -> Vec<MediaProfile> {
        vec![
            profile("jpeg", 1920, 1080, "JPEG", 5, 2048),
            profile("sub", 640, 360, "H264", 15, 512),
            profile("main", 1920, 1080, "H264", 25, 4096),
        ]
    }

    async fn get_stream_uri(&self, token: &str) -> Result<String, OnvifError> {
        Ok(format!("{}/{token}", self.rtsp_base))
    }
}

struct Events;

#[async_trait]
impl EventService for Events {}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [port, host, user, password, rtsp_base] = &a[..] else {
        eprintln!("usage: onvif-device PORT HOST USER PASSWORD RTSP_BASE");
        std::process::exit(2);
    };
    let cam = Camera { rtsp_base: rtsp_base.clone() };
    let server = OnvifServer::builder()
        .port(port.parse().expect("PORT is a number"))
        .advertised_host(host)
        .device_service(cam.clone())
        .media_service(cam)
        .event_service(Events)
        .auth(user, password)
        .build()
        .expect("the server builds");
    eprintln!("onvif-device: serving on port {port}");
    server.run().await.expect("the server runs");
}
