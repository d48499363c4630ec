// The subset of Envoy's ext_proc message shapes meshward reads and writes, as decoded by
// @grpc/proto-loader with LOADER_OPTIONS (snake_case fields, oneof discriminators, bytes as Buffer).

export interface HeaderValue { key?: string; value?: string; raw_value?: Buffer }
export interface HeaderMap { headers?: HeaderValue[] }
export interface HttpHeaders { headers?: HeaderMap; end_of_stream?: boolean }
export interface HttpBody { body?: Buffer; end_of_stream?: boolean }
export interface HttpTrailers { trailers?: HeaderMap }

/** google.protobuf.Value/Struct as proto-loader decodes them: camelCase, oneof `kind`. */
export interface StructValue {
  kind?: string;
  stringValue?: string;
  boolValue?: boolean;
  numberValue?: number;
  structValue?: Struct;
}
export interface Struct { fields?: Record<string, StructValue> }

export type RequestKind =
  | 'request_headers' | 'request_body' | 'request_trailers'
  | 'response_headers' | 'response_body' | 'response_trailers';

export interface ProcessingRequest {
  request?: RequestKind;
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  attributes?: Record<string, Struct>;
  observability_mode?: boolean;
}

export interface HeaderValueOption { header: { key: string; raw_value: Buffer } }
export interface HeaderMutation { set_headers?: HeaderValueOption[]; remove_headers?: string[] }
export interface CommonResponse { status?: 'CONTINUE' | 'CONTINUE_AND_REPLACE'; header_mutation?: HeaderMutation; body_mutation?: { body?: Buffer } }

export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body?: Buffer;
  details?: string;
}

/** ProcessingMode fields a request_headers response may override (only with allow_mode_override). */
export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL';
export interface ProcessingModeOverride { request_body_mode?: BodySendMode; response_body_mode?: BodySendMode }

export type ProcessingResponse =
  | { request_headers: { response?: CommonResponse }; mode_override?: ProcessingModeOverride }
  | { response_headers: { response?: CommonResponse }; mode_override?: ProcessingModeOverride }
  | { request_body: { response?: CommonResponse } }
  | { response_body: { response?: CommonResponse } }
  | { request_trailers: { header_mutation?: HeaderMutation } }
  | { response_trailers: { header_mutation?: HeaderMutation } }
  | { immediate_response: ImmediateResponse };
