// JWT peek: decodes a bearer token's header and payload WITHOUT verifying it (verification is the
// app's or Istio's job); the claims feed identity-keyed detection and the flags make forged or
// sloppy tokens cheap to spot. Bounded: tokens over MAX_TOKEN_BYTES are only flagged, never decoded.
import { ByteBuffer } from "./bytes";
import * as json from "./json";

export const MAX_TOKEN_BYTES: usize = 16 * 1024;

export const FLAG_MALFORMED: u32 = 1;
export const FLAG_OVERSIZE: u32 = 2;
export const FLAG_ALG_NONE: u32 = 4;
export const FLAG_UNSIGNED: u32 = 8;
export const FLAG_EXPIRED: u32 = 16;
export const FLAG_NOT_YET_VALID: u32 = 32;

export class JwtPeek {
  flags: u32 = 0;
  alg: string = "";
  sub: string = "";
  iss: string = "";
  aud: string = "";
  scope: string = "";
  exp: string = "";
  nbf: string = "";

  clear(): void {
    this.flags = 0;
    this.alg = ""; this.sub = ""; this.iss = ""; this.aud = ""; this.scope = ""; this.exp = ""; this.nbf = "";
  }

  /** Comma-separated flag names, stable order (what the server parses). */
  flagNames(): string {
    let s = "";
    if (this.flags & FLAG_MALFORMED) s += ",malformed";
    if (this.flags & FLAG_OVERSIZE) s += ",oversize";
    if (this.flags & FLAG_ALG_NONE) s += ",alg_none";
    if (this.flags & FLAG_UNSIGNED) s += ",unsigned";
    if (this.flags & FLAG_EXPIRED) s += ",expired";
    if (this.flags & FLAG_NOT_YET_VALID) s += ",not_yet_valid";
    return s.length > 0 ? s.substring(1) : s;
  }
}

const decoded = new ByteBuffer();

function b64Value(c: u32): i32 {
  if (c >= 0x41 && c <= 0x5a) return <i32>(c - 0x41);
  if (c >= 0x61 && c <= 0x7a) return <i32>(c - 0x61 + 26);
  if (c >= 0x30 && c <= 0x39) return <i32>(c - 0x30 + 52);
  if (c == 0x2d || c == 0x2b) return 62; // base64url '-' (and '+' leniently)
  if (c == 0x5f || c == 0x2f) return 63; // base64url '_' (and '/')
  return -1;
}

/** base64url (padding optional) -> `decoded`. False on any invalid character or length. */
function base64UrlDecode(p: usize, n: usize): bool {
  decoded.reset();
  while (n > 0 && load<u8>(p + n - 1) == 0x3d) n--; // strip '=' padding
  if ((n & 3) == 1) return false;
  decoded.ensure((n * 3) >> 2);
  let acc: u32 = 0;
  let bits: u32 = 0;
  for (let i: usize = 0; i < n; i++) {
    const v = b64Value(<u32>load<u8>(p + i));
    if (v < 0) return false;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(decoded.ptr + decoded.len, <u8>(acc >> bits));
      decoded.len++;
    }
  }
  return true;
}

function claimString(v: json.JValue | null): string {
  if (v === null) return "";
  if (v.kind == json.Kind.String) return v.str;
  if (v.kind == json.Kind.Number) return (<i64>v.num).toString();
  if (v.kind == json.Kind.Array) {
    // aud / scp arrays: space-joined strings (bounded by the token size limit).
    const items = v.items!;
    let s = "";
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (it.kind != json.Kind.String) continue;
      if (s.length > 0) s += " ";
      s += it.str;
    }
    return s;
  }
  return "";
}

function decodeJson(p: usize, n: usize): json.JValue | null {
  if (!base64UrlDecode(p, n)) return null;
  const v = json.parse(decoded.ptr, decoded.len);
  return v !== null && v.kind == json.Kind.Object ? v : null;
}

/** Peeks at the compact JWS [p, p+n) (no "Bearer " prefix). `nowSeconds` judges exp/nbf. */
export function peek(p: usize, n: usize, nowSeconds: i64, out: JwtPeek): void {
  out.clear();
  if (n > MAX_TOKEN_BYTES) { out.flags |= FLAG_OVERSIZE; return; }
  let dot1: isize = -1;
  let dot2: isize = -1;
  let dots = 0;
  for (let i: usize = 0; i < n; i++) {
    if (load<u8>(p + i) != 0x2e) continue;
    dots++;
    if (dots == 1) dot1 = <isize>i; else if (dots == 2) dot2 = <isize>i;
  }
  if (dots != 2) { out.flags |= FLAG_MALFORMED; return; }
  const headerLen = <usize>dot1;
  const payloadStart = <usize>dot1 + 1;
  const payloadLen = <usize>dot2 - payloadStart;
  const sigLen = n - <usize>dot2 - 1;
  const header = decodeJson(p, headerLen);
  if (header === null) { out.flags |= FLAG_MALFORMED; return; }
  const alg = header.get("alg");
  if (alg !== null && alg.kind == json.Kind.String) out.alg = alg.str;
  if (out.alg.toLowerCase() == "none") out.flags |= FLAG_ALG_NONE;
  if (sigLen == 0) out.flags |= FLAG_UNSIGNED;
  const claims = decodeJson(p + payloadStart, payloadLen);
  if (claims === null) { out.flags |= FLAG_MALFORMED; return; }
  out.sub = claimString(claims.get("sub"));
  out.iss = claimString(claims.get("iss"));
  out.aud = claimString(claims.get("aud"));
  out.scope = claimString(claims.get("scope"));
  if (out.scope.length == 0) out.scope = claimString(claims.get("scp"));
  const exp = claims.get("exp");
  if (exp !== null && exp.kind == json.Kind.Number && isFinite(exp.num)) {
    out.exp = (<i64>exp.num).toString();
    if (<i64>exp.num < nowSeconds) out.flags |= FLAG_EXPIRED;
  }
  const nbf = claims.get("nbf");
  if (nbf !== null && nbf.kind == json.Kind.Number && isFinite(nbf.num)) {
    out.nbf = (<i64>nbf.num).toString();
    if (<i64>nbf.num > nowSeconds) out.flags |= FLAG_NOT_YET_VALID;
  }
}
