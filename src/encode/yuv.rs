//! An owned I420 (YUV 4:2:0 planar) picture: the encoders' input format.

/// A planar 4:2:0 picture with tightly packed planes.
pub struct I420 {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// Y plane then U then V.
    pub data: Vec<u8>,
}

impl I420 {
    /// A black picture.
    pub fn new(width: usize, height: usize) -> I420 {
        assert!(width % 2 == 0 && height % 2 == 0, "I420 dimensions must be even");
        let y = width * height;
        let mut data = vec![16u8; y + y / 2];
        data[y..].fill(128);
        I420 { width, height, data }
    }

    /// The three planes, mutably.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let y = self.width * self.height;
        let (yp, uv) = self.data.split_at_mut(y);
        let (u, v) = uv.split_at_mut(y / 4);
        (yp, u, v)
    }

    /// The three planes.
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let y = self.width * self.height;
        let (yp, uv) = self.data.split_at(y);
        let (u, v) = uv.split_at(y / 4);
        (yp, u, v)
    }
}
