/**
 * Float16 rounding emulated in a float32 graph, for measuring the fp16 graph's error on a CPU.
 *
 * ONNX Runtime 1.31's CPU EP has no fp16 kernels for most of the synthesis ops. It wraps them in
 * Cast nodes and then removes each Cast(float→float16)→Cast(float16→float) pair, so on the CPU the
 * feature maps stay float32 and only the fp16 weights lose precision. A GPU rounds every fp16 value.
 * `emulateFloat16` rewrites the fp16 graph to float32 and rounds every value that would be fp16 to
 * 11 significant bits with Veltkamp splitting (`t = c·x; x16 = t − (t − x)`, `c = 2^13 + 1`), which
 * ONNX Runtime does not simplify away.
 * NOTE: the emulation rounds the significand only; it keeps float32's range, so it models neither
 * fp16 overflow above 65504 nor the reduced precision of fp16 subnormals below 6.1e-5.
 */

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, NodeProtoSchema, TensorProtoSchema, TensorProto_DataType, type NodeProto, type TensorProto } from 'onnx-buf';

import { float16Value } from '../../src/graph/float16.js';

/** Veltkamp splitting constant for 24 − 11 = 13 dropped significand bits. */
const splitter = 2 ** 13 + 1;

function float32Initializer(tensor: TensorProto): TensorProto {
  const raw = tensor.rawData;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const bytes = new Uint8Array(raw.byteLength * 2);
  const out = new DataView(bytes.buffer);
  for (let i = 0; i < raw.byteLength / 2; i++) out.setFloat32(i * 4, float16Value(view.getUint16(i * 2, true)), true);
  return create(TensorProtoSchema, { name: tensor.name, dims: tensor.dims, dataType: TensorProto_DataType.FLOAT, rawData: bytes });
}

/** Returns the fp16 synthesis graph `bytes` as a float32 graph that rounds like fp16 (see above). */
export function emulateFloat16(bytes: Uint8Array): Uint8Array {
  const model = fromBinary(ModelProtoSchema, bytes);
  const graph = model.graph!;
  const half = new Set<string>();
  graph.initializer = graph.initializer.map((tensor) => {
    if (tensor.dataType !== TensorProto_DataType.FLOAT16) return tensor;
    half.add(tensor.name);
    return float32Initializer(tensor);
  });
  const splitterName = 'fp16_emulation.splitter';
  graph.initializer.push(create(TensorProtoSchema, { name: splitterName, dims: [], dataType: TensorProto_DataType.FLOAT, rawData: new Uint8Array(Float32Array.of(splitter).buffer) }));

  const nodes: NodeProto[] = [];
  const roundInto = (input: string, output: string) => {
    const scaled = `${output}.veltkamp_t`;
    const difference = `${output}.veltkamp_d`;
    nodes.push(create(NodeProtoSchema, { name: scaled, opType: 'Mul', input: [input, splitterName], output: [scaled] }));
    nodes.push(create(NodeProtoSchema, { name: difference, opType: 'Sub', input: [scaled, input], output: [difference] }));
    nodes.push(create(NodeProtoSchema, { name: output, opType: 'Sub', input: [scaled, difference], output: [output] }));
  };
  for (const node of graph.node) {
    if (node.opType === 'Cast') {
      const to = Number(node.attribute.find((attribute) => attribute.name === 'to')?.i);
      if (to === TensorProto_DataType.FLOAT16) {
        roundInto(node.input[0], node.output[0]);
        half.add(node.output[0]);
      } else {
        nodes.push(create(NodeProtoSchema, { name: node.name, opType: 'Identity', input: node.input, output: node.output }));
      }
      continue;
    }
    if (!node.input.some((input) => half.has(input))) {
      nodes.push(node);
      continue;
    }
    const exact = `${node.output[0]}.fp32`;
    nodes.push(create(NodeProtoSchema, { ...node, name: exact, output: [exact] }));
    roundInto(exact, node.output[0]);
    half.add(node.output[0]);
  }
  graph.node = nodes;
  return toBinary(ModelProtoSchema, model);
}
