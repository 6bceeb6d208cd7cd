import { mkdir, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  BadMailboxFile,
  CONTROL_VERSION,
  moveInto,
  readControl,
  readData,
  reportFileName,
  sha256Hex,
  writeAtomically,
  type DataControl,
  type ReportControl,
} from '../messaging/mailbox-files.ts';
import type { FhirReceiver } from './receiver.ts';

/**
 * The other end of a mailbox in the MESH manner (folder layout in messaging/mailbox-files.ts), for a
 * receiver that is not ours: it collects the complete messages a node placed in `<mailbox>/out/`,
 * has the FhirReceiver judge each one exactly as an HTTP POST is judged (held once by its id), and
 * writes its answers into `<mailbox>/in/`: first a delivery report (`<id>.report.ctl`: success, or
 * error with a reason), then the FHIR response message (`<id>.response.dat` and its `.ctl`). Only
 * then are the collected files moved to `<mailbox>/sent/`, so a crash in between means the message
 * is collected again, and the receiver, holding it already, answers the same.
 */
export class MailboxPickup {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  /** Messages taken from out/ since start (repeats of a held message included). */
  taken = 0;
  private readonly out: string;
  private readonly in: string;
  private readonly name: string;

  constructor(
    private readonly receiver: FhirReceiver,
    /** The mailbox's own folder: `<root>/<mailbox>`. */
    readonly dir: string,
    private readonly pollMs = 250,
  ) {
    this.out = join(dir, 'out');
    this.in = join(dir, 'in');
    this.name = basename(dir);
  }

  async start(): Promise<void> {
    await mkdir(this.out, { recursive: true });
    await mkdir(this.in, { recursive: true });
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pollOnce()
        .catch((error: unknown) => {
          console.error(`mailbox ${this.name}: ${(error as Error).message}`);
        })
        .finally(() => {
          this.running = null;
          this.schedule(this.pollMs);
        });
    }, delayMs);
  }

  /** Collects every complete message in out/ once. */
  async pollOnce(): Promise<void> {
    const names = (await readdir(this.out)).filter((n) => n.endsWith('.ctl')).sort();
    for (const ctl of names) await this.collect(ctl);
  }

  private async collect(ctl: string): Promise<void> {
    let control: DataControl;
    let body: string;
    try {
      const read = await readControl(this.out, ctl);
      if (read.messageType !== 'data') throw new BadMailboxFile('a report has no place in out/');
      control = read;
      body = await readData(this.out, control);
    } catch (error) {
      if (!(error instanceof BadMailboxFile)) throw error;
      // A message that cannot be read whole is refused by report when we know whose it is.
      const localId = ctl.slice(0, -'.ctl'.length);
      if (/^[0-9a-f-]{36}$/i.test(localId))
        await this.report(localId, 'unknown', 'error', `not collected: ${error.message}`);
      await moveInto(this.out, '../rejected', [ctl, `${localId}.dat`]);
      return;
    }
    this.taken++;
    const answer = await this.receiver.take(body, control.localId);
    if (answer.status >= 200 && answer.status < 300) {
      await this.report(control.localId, control.from, 'success');
      await this.respond(control, answer.body);
    } else {
      await this.report(control.localId, control.from, 'error', reasonOf(answer.body));
    }
    await moveInto(this.out, '../sent', [ctl, control.dataFile]);
  }

  private async report(
    messageId: string,
    to: string,
    status: 'success' | 'error',
    reason?: string,
  ): Promise<void> {
    const report: ReportControl = {
      version: CONTROL_VERSION,
      messageType: 'report',
      localId: messageId,
      from: this.name,
      to,
      status,
      ...(reason ? { reason: reason.slice(0, 500) } : {}),
      createdAt: new Date().toISOString(),
    };
    await writeAtomically(this.in, reportFileName(messageId), `${JSON.stringify(report, null, 2)}\n`);
  }

  /** The response message, as a data file and its control file (written last). */
  private async respond(original: DataControl, bundle: unknown): Promise<void> {
    const data = JSON.stringify(bundle);
    const base = `${original.localId}.response`;
    const control: DataControl = {
      version: CONTROL_VERSION,
      messageType: 'data',
      localId: (bundle as { id?: string }).id ?? base,
      from: this.name,
      to: original.from,
      workflowId: `${original.workflowId}_RESPONSE`.slice(0, 64),
      dataFile: `${base}.dat`,
      size: Buffer.byteLength(data),
      sha256: sha256Hex(data),
      createdAt: new Date().toISOString(),
    };
    await writeAtomically(this.in, control.dataFile, data);
    await writeAtomically(this.in, `${base}.ctl`, `${JSON.stringify(control, null, 2)}\n`);
  }
}

/** The first issue's words of an OperationOutcome the receiver answered with. */
function reasonOf(body: unknown): string {
  const issue = (body as { issue?: { details?: { text?: string }; code?: string }[] } | null)?.issue?.[0];
  return issue?.details?.text ?? issue?.code ?? 'refused';
}
