/**
 * A small op-level ONNX graph builder on top of onnx-buf (the ONNX 1.20 protobuf schema).
 *
 * Every value gets a unique name, nodes are appended in call order and initializers are stored as
 * little-endian raw data, so the same sequence of calls always encodes to the same bytes.
 */

import { endianness } from 'node:os';

import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProtoSchema,
  TensorProto_DataType,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';

import { toFloat16Bits } from './float16.js';

/** Default opset of the ai.onnx domain; ONNX Runtime 1.31 supports up to 26. */
export const defaultOpsetVersion = 17;
/** Default IR version (8 is the one that introduced opset 17 support in the ONNX spec). */
export const defaultIrVersion = 8;

export type ElementType = 'float' | 'float16' | 'int64' | 'bool';

/** A dimension: a fixed size, or a symbolic name (`dim_param`) such as `'N'` for the batch. */
export type Dim = number | string;

/** An attribute value. Plain numbers are INT, arrays of numbers INTS; use `float()` for FLOAT. */
export type AttributeValue = number | number[] | string | FloatAttribute | FloatsAttribute;

interface FloatAttribute {
  kind: 'float';
  value: number;
}
interface FloatsAttribute {
  kind: 'floats';
  value: number[];
}

/** Marks a FLOAT attribute (plain numbers are written as INT). */
export function float(value: number): FloatAttribute {
  return { kind: 'float', value };
}

/** Marks a FLOATS attribute (plain number arrays are written as INTS). */
export function floats(value: number[]): FloatsAttribute {
  return { kind: 'floats', value };
}

const hostIsLittleEndian = endianness() === 'LE';

const elementTypeCodes: Record<ElementType, number> = {
  float: TensorProto_DataType.FLOAT,
  float16: TensorProto_DataType.FLOAT16,
  int64: TensorProto_DataType.INT64,
  bool: TensorProto_DataType.BOOL,
};

export interface NodeOptions {
  /** Base of the node and output name; made unique with a numeric suffix when taken. */
  name?: string;
  /** Exact output name (a graph output, for example); must not be taken yet. */
  output?: string;
}

export class GraphBuilder {
  readonly #graphName: string;
  readonly #usedNames = new Set<string>();
  readonly #inputs: ValueInfoProto[] = [];
  readonly #outputs: ValueInfoProto[] = [];
  readonly #initializers: TensorProto[] = [];
  readonly #nodes: NodeProto[] = [];
  readonly #opCounts = new Map<string, number>();

  constructor(graphName: string) {
    this.#graphName = graphName;
  }

  /** Returns `base` if it is free, else `base_1`, `base_2`, ... and reserves the result. */
  uniqueName(base: string): string {
    let name = base;
    for (let suffix = 1; this.#usedNames.has(name); suffix++) name = `${base}_${suffix}`;
    this.#usedNames.add(name);
    return name;
  }

  #reserveExact(name: string): string {
    if (this.#usedNames.has(name)) throw new Error(`ONNX value name '${name}' is already taken; pick another name`);
    this.#usedNames.add(name);
    return name;
  }

  /** Declares a graph input and returns its name. */
  input(name: string, type: ElementType, dims: Dim[]): string {
    this.#inputs.push(valueInfo(this.#reserveExact(name), type, dims));
    return name;
  }

  /** Declares an existing value as a graph output. */
  output(name: string, type: ElementType, dims: Dim[]): void {
    if (!this.#usedNames.has(name)) throw new Error(`graph output '${name}' is not produced by any node`);
    this.#outputs.push(valueInfo(name, type, dims));
  }

  /** Adds a float32 initializer (copied) and returns its unique name. */
  initializer(name: string, data: Float32Array, dims: number[]): string {
    checkElementCount(name, data.length, dims);
    let bytes: Uint8Array<ArrayBuffer>;
    if (hostIsLittleEndian) {
      bytes = new Uint8Array(data.slice().buffer);
    } else {
      bytes = new Uint8Array(data.byteLength);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
    }
    return this.#addInitializer(name, 'float', bytes, dims);
  }

  /** Adds a float16 initializer, rounding `data` to the nearest fp16 values, and returns its unique name. */
  initializerFloat16(name: string, data: Float32Array, dims: number[]): string {
    checkElementCount(name, data.length, dims);
    const halves = toFloat16Bits(data);
    const bytes = new Uint8Array(halves.length * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < halves.length; i++) view.setUint16(i * 2, halves[i], true);
    return this.#addInitializer(name, 'float16', bytes, dims);
  }

  /** Adds an int64 initializer and returns its unique name. */
  initializerInt64(name: string, values: readonly number[] | BigInt64Array, dims: number[]): string {
    checkElementCount(name, values.length, dims);
    const bytes = new Uint8Array(values.length * 8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < values.length; i++) view.setBigInt64(i * 8, BigInt(values[i]), true);
    return this.#addInitializer(name, 'int64', bytes, dims);
  }

  /** Adds a float32 scalar constant (shape `[]`). */
  scalar(name: string, value: number): string {
    return this.initializer(name, Float32Array.of(value), []);
  }

  /** Adds an int64 1-D constant, the form Unsqueeze axes, Reshape shapes and Expand shapes take. */
  int64s(name: string, values: number[]): string {
    return this.initializerInt64(name, values, [values.length]);
  }

  #addInitializer(name: string, type: ElementType, rawData: Uint8Array<ArrayBuffer>, dims: number[]): string {
    const unique = this.uniqueName(name);
    this.#initializers.push(
      create(TensorProtoSchema, {
        name: unique,
        dims: dims.map(BigInt),
        dataType: elementTypeCodes[type],
        rawData,
      }),
    );
    return unique;
  }

  /** Appends one single-output node and returns the name of its output. */
  node(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, options: NodeOptions = {}): string {
    for (const input of inputs) {
      if (input !== '' && !this.#usedNames.has(input)) {
        throw new Error(`${opType} node input '${input}' is not defined yet; create it before using it`);
      }
    }
    const opIndex = this.#opCounts.get(opType) ?? 0;
    this.#opCounts.set(opType, opIndex + 1);
    const output = options.output !== undefined ? this.#reserveExact(options.output) : this.uniqueName(options.name ?? `${opType}_${opIndex}`);
    this.#nodes.push(
      create(NodeProtoSchema, {
        name: output,
        opType,
        input: inputs,
        output: [output],
        attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
      }),
    );
    return output;
  }

  /** Encodes the model (opset `opsetVersion`, IR `irVersion`) as protobuf bytes. */
  toBytes(options: { opsetVersion?: number; irVersion?: number; docString?: string } = {}): Uint8Array {
    if (this.#outputs.length === 0) throw new Error(`graph '${this.#graphName}' has no outputs; call output() first`);
    const model = create(ModelProtoSchema, {
      irVersion: BigInt(options.irVersion ?? defaultIrVersion),
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(options.opsetVersion ?? defaultOpsetVersion) })],
      producerName: 'stylegan-serve',
      docString: options.docString ?? '',
      graph: create(GraphProtoSchema, {
        name: this.#graphName,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      }),
    });
    return toBinary(ModelProtoSchema, model);
  }
}

function checkElementCount(name: string, length: number, dims: number[]): void {
  const expected = dims.reduce((product, dim) => product * dim, 1);
  if (length !== expected) {
    throw new Error(`initializer '${name}' has ${length} elements but shape [${dims.join(', ')}] needs ${expected}`);
  }
}

function valueInfo(name: string, type: ElementType, dims: Dim[]): ValueInfoProto {
  const shape = create(TensorShapeProtoSchema, {
    dim: dims.map((dim) =>
      create(TensorShapeProto_DimensionSchema, {
        value: typeof dim === 'number' ? { case: 'dimValue', value: BigInt(dim) } : { case: 'dimParam', value: dim },
      }),
    ),
  });
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType: elementTypeCodes[type], shape }) },
    }),
  });
}

function attribute(name: string, value: AttributeValue): AttributeProto {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute '${name}' = ${value} is not an integer; wrap it in float() for a FLOAT`);
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) });
  }
  if (typeof value === 'string') {
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.STRING, s: new TextEncoder().encode(value) });
  }
  if (Array.isArray(value)) {
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: value.map(BigInt) });
  }
  if (value.kind === 'float') {
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: value.value });
  }
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOATS, floats: value.value });
}
