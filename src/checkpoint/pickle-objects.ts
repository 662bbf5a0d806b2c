/**
 * The values that allowlist handlers give the pickle VM: resolved globals (inert markers or
 * reconstructors) and instances that accept BUILD state.
 */

export interface PickleGlobalHandlers {
  /** REDUCE: `callable(*args)`. */
  readonly call?: (args: unknown[]) => unknown;
  /** NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`. */
  readonly construct?: (args: unknown[], kwargs: Map<unknown, unknown>) => unknown;
}

/** A global resolved through the allowlist. Without `call` or `construct` it is an inert marker. */
export class PickleGlobal {
  readonly module: string;
  readonly name: string;
  readonly call?: PickleGlobalHandlers['call'];
  readonly construct?: PickleGlobalHandlers['construct'];

  /** `qualifiedName` is `module.name`, e.g. `collections.OrderedDict`. */
  constructor(qualifiedName: string, handlers: PickleGlobalHandlers = {}) {
    const dot = qualifiedName.lastIndexOf('.');
    this.module = qualifiedName.slice(0, dot);
    this.name = qualifiedName.slice(dot + 1);
    this.call = handlers.call;
    this.construct = handlers.construct;
  }

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * An instance of an allowlisted class (NEWOBJ or a REDUCE handler). BUILD stores the state;
 * subclasses override `setState` to interpret it.
 */
export class PyObject {
  state: unknown = undefined;

  constructor(
    readonly className: string,
    readonly args: unknown[] = [],
  ) {}

  setState(state: unknown): void {
    this.state = state;
  }
}
