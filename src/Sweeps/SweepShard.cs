using System.Globalization;

namespace ResnetMnist.Sweeps;

/// <summary>
/// Which runs of a grid one process runs: run <c>i</c> (its index in <see cref="SweepGrid.Expand"/>'s order) belongs to
/// shard <c>i mod Count</c>, so shards <c>0..Count-1</c> together run every combination once, each into the same
/// sweep folder. <see cref="All"/> is a sweep on one machine.
/// </summary>
/// <param name="Index">This shard, 0-based: 0 ≤ Index &lt; Count.</param>
/// <param name="Count">How many shards share the grid (1: no sharding).</param>
/// <param name="Source">Where the shard came from, for the user (<c>--shard 1/4</c>, <c>SLURM_ARRAY_TASK_ID=5</c>); null for <see cref="All"/>.</param>
public sealed record SweepShard(int Index, int Count, string? Source = null)
{
    /// <summary>The whole grid in one process.</summary>
    public static readonly SweepShard All = new(0, 1);

    /// <summary>The variable that gives the number of shards where the scheduler gives only an index (a Kubernetes Indexed Job).</summary>
    public const string ShardsVariable = "RESNET_MNIST_SHARDS";

    /// <summary>Whether run <paramref name="run"/> (0-based grid index) is this shard's.</summary>
    public bool Owns(int run) => run % Count == Index;

    const string Allowed = "allowed: K/N with 0 <= K < N <= 10000, e.g. --shard 0/4";

    /// <summary>
    /// The shard of this process: <paramref name="shard"/> (<c>--shard K/N</c>) when given; else Slurm's job array
    /// (<c>SLURM_ARRAY_TASK_ID</c> − <c>SLURM_ARRAY_TASK_MIN</c>, divided by <c>SLURM_ARRAY_TASK_STEP</c> when set, of
    /// <c>SLURM_ARRAY_TASK_COUNT</c>); else a Kubernetes Indexed Job's <c>JOB_COMPLETION_INDEX</c>, of
    /// <paramref name="shards"/> (<c>--shards N</c>) or <see cref="ShardsVariable"/>; else <see cref="All"/>.
    /// A value that does not fit is a <see cref="SweepException"/> naming the option or variable.
    /// </summary>
    /// <param name="env">Reads an environment variable (null when unset).</param>
    public static SweepShard Resolve(string? shard, int? shards, Func<string, string?> env)
    {
        if (shard is not null)
        {
            if (shards is not null) throw new SweepException($"--shards {shards}: only with JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); with --shard {shard} the count is its N");
            var parts = shard.Split('/');
            if (parts.Length != 2) throw new SweepException($"--shard {shard}: expected K/N; {Allowed}");
            int n = Integer(parts[1], $"--shard {shard}", "N", 1);
            int k = Integer(parts[0], $"--shard {shard}", "K", 0);
            return Checked(k, n, $"--shard {shard}");
        }
        if (env("SLURM_ARRAY_TASK_ID") is string id)
        {
            string Var(string name, string? fallback) => env(name) ?? fallback
                ?? throw new SweepException($"SLURM_ARRAY_TASK_ID={id} is set but {name} is not; run inside a Slurm job array (sbatch --array=0-N), or pass --shard K/N");
            var source = $"SLURM_ARRAY_TASK_ID={id}";
            long task = Integer(id, "SLURM_ARRAY_TASK_ID", "the task id", 0);
            long min = Integer(Var("SLURM_ARRAY_TASK_MIN", "0"), "SLURM_ARRAY_TASK_MIN", "the first task id", 0);
            long step = Integer(Var("SLURM_ARRAY_TASK_STEP", "1"), "SLURM_ARRAY_TASK_STEP", "the step", 1);
            int count = shards ?? Integer(Var("SLURM_ARRAY_TASK_COUNT", null), "SLURM_ARRAY_TASK_COUNT", "the task count", 1);
            if (task < min || (task - min) % step != 0)
                throw new SweepException($"{source}: not one of the array's ids (SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_STEP={step}); allowed: an array of consecutive ids, e.g. sbatch --array=0-{count - 1}");
            return Checked((int)Math.Min((task - min) / step, int.MaxValue), count, source);
        }
        if (env("JOB_COMPLETION_INDEX") is string index)
        {
            var source = $"JOB_COMPLETION_INDEX={index}";
            var countText = shards?.ToString(CultureInfo.InvariantCulture) ?? env(ShardsVariable)
                ?? throw new SweepException($"{source} is set but the number of shards is not: pass --shards N (the Job's completions) or set {ShardsVariable}=N");
            int count = Integer(countText, shards is null ? ShardsVariable : "--shards", "the number of shards", 1);
            return Checked(Integer(index, "JOB_COMPLETION_INDEX", "the completion index", 0), count, source);
        }
        if (shards is not null) throw new SweepException($"--shards {shards}: only with JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); on its own, give --shard K/N");
        return All;
    }

    static int Integer(string text, string where, string what, int min)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
            throw new SweepException($"{where}: {what} '{text}' is not an integer; {Allowed}");
        if (v < min) throw new SweepException($"{where}: {what} must be >= {min}, found {v}; {Allowed}");
        return v;
    }

    static SweepShard Checked(int k, int n, string source)
    {
        if (n > SweepGrid.MaxRuns) throw new SweepException($"{source}: {n} shards is more than a sweep's {SweepGrid.MaxRuns} runs; {Allowed}");
        if (k >= n) throw new SweepException($"{source}: shard {k} of {n} does not exist (shards are numbered 0 to {n - 1}); {Allowed}");
        return new SweepShard(k, n, n == 1 ? null : source);
    }
}
