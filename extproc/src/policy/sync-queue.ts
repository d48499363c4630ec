// A loader's syncs run one after another, each against the policy set it was given; recheck() runs
// the latest set again (on refresh ticks). Shared by the spec and descriptor set loaders.
import type { PolicySet } from './precedence.ts';

export class PolicySyncQueue {
  readonly #run: (set: PolicySet) => Promise<void>;
  #lastSet: PolicySet | undefined;
  #queue: Promise<void> = Promise.resolve();

  constructor(run: (set: PolicySet) => Promise<void>) {
    this.#run = run;
  }

  sync(set: PolicySet): Promise<void> {
    this.#lastSet = set;
    this.#queue = this.#queue.then(() => this.#run(set), () => this.#run(set));
    return this.#queue;
  }

  recheck(): Promise<void> {
    return this.#lastSet ? this.sync(this.#lastSet) : Promise.resolve();
  }
}
