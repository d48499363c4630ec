// A serialized FileDescriptorSet (what `protoc --descriptor_set_out` writes) built at test time from
// .proto text with protobufjs, base64-encoded as a policy carries it: no binary blob in the repo.
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

export function descriptorSetBase64(proto: string): string {
  const root = protobuf.parse(proto).root;
  const set = (root as unknown as { toDescriptor(syntax: string): unknown }).toDescriptor('proto3');
  const bytes = (descriptor as unknown as { FileDescriptorSet: { encode(m: unknown): { finish(): Uint8Array } } }).FileDescriptorSet.encode(set).finish();
  return Buffer.from(bytes).toString('base64');
}
