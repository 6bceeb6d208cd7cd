import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * The files of a mailbox in the MESH manner: this imitates the folder client of the NHS MESH
 * service (an out folder, an in folder, a control file beside each data file, delivery reports read
 * back), it is not the MESH API. One mailbox is a folder `<root>/<mailbox>/`:
 *
 *   out/<messageId>.dat   the message Bundle (JSON) we send
 *   out/<messageId>.ctl   its control file: written last, so its presence means the message is whole
 *   in/<id>.report.ctl    a delivery report about our message <id>: success or error (with a reason)
 *   in/<x>.dat + <x>.ctl  a message for us: a FHIR response message answering one of ours
 *   in/done/, in/bad/, in/unmatched/   where the node moves what it has read
 *
 * Both sides use these helpers: the node (transport-mailbox.ts) and the receiver that is not ours
 * (receiver/mailbox.ts), so the format is written down once.
 */

export const CONTROL_VERSION = 1;
/** Bigger than any message we send or answer we expect: anything larger is not read. */
export const MAX_DATA_BYTES = 5 << 20;
const MAX_CONTROL_BYTES = 64 << 10;

const fileName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.dat$/, 'must be a .dat file name');
const instant = z.iso.datetime({ offset: true });

/** The control file of a data message: who from, to whom, and what the data file must be. */
export const dataControlSchema = z.strictObject({
  version: z.literal(CONTROL_VERSION),
  messageType: z.literal('data'),
  /** The sender's own id for it: for our messages the message id (the MessageHeader.id). */
  localId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/),
  from: z.string().min(1).max(200),
  to: z.string().min(1).max(200),
  /** What sort of message it is, as MESH's workflow ids say it: HOLDFAST_AMBULANCE_REQUEST. */
  workflowId: z.string().regex(/^[A-Z0-9_]{1,64}$/),
  /** The data file beside it (a name, never a path). */
  dataFile: fileName,
  size: z.number().int().min(0).max(MAX_DATA_BYTES),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: instant,
});
export type DataControl = z.infer<typeof dataControlSchema>;

/** A delivery report: the receiving side's transport took the message (success), or could not. */
export const reportControlSchema = z.strictObject({
  version: z.literal(CONTROL_VERSION),
  messageType: z.literal('report'),
  /** The message it reports on (our message id). */
  localId: z.string().uuid(),
  from: z.string().min(1).max(200),
  to: z.string().min(1).max(200),
  status: z.enum(['success', 'error']),
  reason: z.string().trim().min(1).max(500).optional(),
  createdAt: instant,
});
export type ReportControl = z.infer<typeof reportControlSchema>;

export const controlSchema = z.discriminatedUnion('messageType', [dataControlSchema, reportControlSchema]);
export type Control = z.infer<typeof controlSchema>;

export const reportFileName = (messageId: string) => `${messageId}.report.ctl`;

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A file that cannot be read as the format says, with why (never its content). */
export class BadMailboxFile extends Error {}

/**
 * Writes a file so that a reader sees all of it or none: a temporary file in the same folder
 * (named so that no reader takes it: it does not end in .ctl or .dat), fsynced, renamed over the
 * name, then the folder fsynced so the rename itself survives a power cut.
 */
export async function writeAtomically(dir: string, name: string, content: string): Promise<void> {
  const temporary = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  const file = await open(temporary, 'wx', 0o640);
  try {
    await file.writeFile(content, 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temporary, join(dir, name));
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncFolder(dir);
}

export async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Moves files of one folder into its sub-folder (created when missing), durably. */
export async function moveInto(dir: string, sub: string, names: readonly string[]): Promise<void> {
  const target = join(dir, sub);
  await mkdir(target, { recursive: true });
  for (const name of names) {
    try {
      await rename(join(dir, name), join(target, name));
    } catch (error) {
      // Moved already (a pass that stopped half-way), or never there (a report has no data file).
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  await syncFolder(target);
  await syncFolder(dir);
}

/** Reads and checks a control file; a BadMailboxFile says what is wrong with it. */
export async function readControl(dir: string, name: string): Promise<Control> {
  const path = join(dir, name);
  if ((await stat(path)).size > MAX_CONTROL_BYTES) throw new BadMailboxFile('the control file is too large');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    throw new BadMailboxFile('the control file is not JSON');
  }
  const parsed = controlSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadMailboxFile(
      `the control file does not follow the format (${issue.path.join('.') || 'the file'}: ${issue.message})`,
    );
  }
  return parsed.data;
}

/** The data file a data control file names, checked against the control file's size and checksum. */
export async function readData(dir: string, control: DataControl): Promise<string> {
  let data: Buffer;
  try {
    if ((await stat(join(dir, control.dataFile))).size > MAX_DATA_BYTES)
      throw new BadMailboxFile('the data file is too large');
    data = await readFile(join(dir, control.dataFile));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new BadMailboxFile('the data file named by the control file is missing');
    throw error;
  }
  if (data.length !== control.size)
    throw new BadMailboxFile('the data file is not the size its control file says');
  if (sha256Hex(data) !== control.sha256)
    throw new BadMailboxFile('the data file does not match the checksum in its control file');
  return data.toString('utf8');
}
