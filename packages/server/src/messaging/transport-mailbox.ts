import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MessageKind } from '@holdfast/core';
import {
  BadMailboxFile,
  CONTROL_VERSION,
  moveInto,
  readControl,
  readData,
  sha256Hex,
  writeAtomically,
  type DataControl,
} from './mailbox-files.ts';
import { respondsTo, type DeliveryOutcome } from './transport-http.ts';

/**
 * Delivery through a mailbox in the MESH manner (folder layout in mailbox-files.ts): sending a
 * message is placing it in the mailbox's out/ folder, where a mailbox client that is not ours
 * collects it. Nothing answers at once: the delivery report and the receiver's response message come
 * back later as files in in/, which the delivery worker reads (`readAnswers`) and records.
 *
 * This imitates MESH's folder client; it is not the NHS MESH API, and nothing here talks to MESH.
 */
export interface MailboxTransportOptions {
  /** The folder holding one folder per mailbox (`messagingMailboxRoot` in the node's config). */
  root: string;
  /**
   * A placed message is placed again only if no acknowledgement came within this (the receiver's
   * side was down, a report was lost); the receiver holds it once by its id either way.
   */
  awaitAcknowledgementMs?: number;
}

/** One file the worker found in a mailbox's in/ folder, read and checked. */
export type MailboxAnswer =
  | { file: string; type: 'report'; messageId: string; status: 'success' | 'error'; reason: string | null }
  | { file: string; dataFile: string; type: 'response'; messageId: string; bundle: unknown }
  /** Whole and well-formed, but not about a message of ours (no id we can match). */
  | { file: string; dataFile: string | null; type: 'unmatched'; problem: string }
  | { file: string; dataFile: string | null; type: 'bad'; problem: string };

export type AnswerDestination = 'done' | 'bad' | 'unmatched';

const CONTROL_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.ctl$/;

export class MailboxTransport {
  readonly root: string;
  private readonly awaitAcknowledgementMs: number;

  constructor(options: MailboxTransportOptions) {
    this.root = options.root;
    this.awaitAcknowledgementMs = options.awaitAcknowledgementMs ?? 10 * 60_000;
  }

  private folder(mailbox: string, side: 'out' | 'in'): string {
    return join(this.root, mailbox, side);
  }

  /**
   * Places a message in the mailbox's out/ folder: the Bundle as `<id>.dat`, then its control file
   * `<id>.ctl`, each written atomically, so a collector that sees the .ctl finds the whole message.
   * Placing the same message again (after a crash, or no acknowledgement in time) writes the same
   * data under the same name; if it is still there unchanged it is left as it is.
   */
  async place(
    mailbox: string,
    message: { messageId: string; kind: MessageKind; from: string },
    body: string,
    nowMs: number,
  ): Promise<DeliveryOutcome> {
    const out = this.folder(mailbox, 'out');
    try {
      // The root must exist (an unmounted share must not be papered over); the mailbox's own
      // folders are made on first use, as a mailbox client would.
      if (!(await stat(this.root)).isDirectory()) throw new Error('not a folder');
    } catch {
      return { kind: 'retry', problem: 'the mailbox root folder configured on this node is not there' };
    }
    const checksum = sha256Hex(body);
    const note = `placed in mailbox ${mailbox}`;
    const awaitUntilMs = nowMs + this.awaitAcknowledgementMs;
    try {
      await mkdir(out, { recursive: true });
      await mkdir(this.folder(mailbox, 'in'), { recursive: true });
      const ctlName = `${message.messageId}.ctl`;
      const placed = await readControl(out, ctlName).catch(() => null);
      if (placed?.messageType === 'data' && placed.sha256 === checksum)
        return { kind: 'sent', note: `${note} (already there)`, awaitUntilMs };
      const control: DataControl = {
        version: CONTROL_VERSION,
        messageType: 'data',
        localId: message.messageId,
        from: message.from,
        to: mailbox,
        workflowId: `HOLDFAST_${message.kind.toUpperCase()}`,
        dataFile: `${message.messageId}.dat`,
        size: Buffer.byteLength(body),
        sha256: checksum,
        createdAt: new Date(nowMs).toISOString(),
      };
      await writeAtomically(out, control.dataFile, body);
      await writeAtomically(out, ctlName, `${JSON.stringify(control, null, 2)}\n`);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { kind: 'retry', problem: `could not write to mailbox ${mailbox}${code ? ` (${code})` : ''}` };
    }
    return { kind: 'sent', note, awaitUntilMs };
  }

  /**
   * Reads the complete files in a mailbox's in/ folder (those with a control file): delivery reports
   * first, then response messages, so "delivered" is recorded before "accepted". A file that cannot
   * be read comes back as `bad` with why; reading never throws for a file's content.
   */
  async readAnswers(mailbox: string): Promise<MailboxAnswer[]> {
    const dir = this.folder(mailbox, 'in');
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const answers: MailboxAnswer[] = [];
    for (const file of names.filter((n) => n.endsWith('.ctl')).sort()) {
      answers.push(await this.readAnswer(dir, file));
    }
    const order = { report: 0, response: 1, unmatched: 2, bad: 2 } as const;
    return answers.sort((a, b) => order[a.type] - order[b.type]);
  }

  private async readAnswer(dir: string, file: string): Promise<MailboxAnswer> {
    if (!CONTROL_FILE.test(file))
      return { file, dataFile: null, type: 'bad', problem: 'the file name is not allowed' };
    let dataFile: string | null = null;
    try {
      const control = await readControl(dir, file);
      if (control.messageType === 'report')
        return {
          file,
          type: 'report',
          messageId: control.localId,
          status: control.status,
          reason: control.reason ?? null,
        };
      dataFile = control.dataFile;
      const text = await readData(dir, control);
      let bundle: unknown;
      try {
        bundle = JSON.parse(text);
      } catch {
        throw new BadMailboxFile('the data file is not JSON');
      }
      const messageId = respondsTo(bundle);
      if (!messageId)
        return {
          file,
          dataFile: control.dataFile,
          type: 'unmatched',
          problem: 'a message that does not answer one of ours',
        };
      return { file, dataFile: control.dataFile, type: 'response', messageId, bundle };
    } catch (error) {
      if (error instanceof BadMailboxFile) return { file, dataFile, type: 'bad', problem: error.message };
      const code = (error as NodeJS.ErrnoException).code;
      return {
        file,
        dataFile,
        type: 'bad',
        problem: `the file could not be read${code ? ` (${code})` : ''}`,
      };
    }
  }

  /** Moves an answer's files out of in/ once read: into done/, bad/ or unmatched/. */
  async settle(mailbox: string, answer: MailboxAnswer, to: AnswerDestination): Promise<void> {
    const names =
      'dataFile' in answer && answer.dataFile
        ? [answer.file, answer.dataFile] // the control file first: without it the data is not taken again
        : [answer.file];
    await moveInto(this.folder(mailbox, 'in'), to, names);
  }
}
